import json
import uuid

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import MautomateCase, MautomateHttpCase


def journey_cta(env, name='E-book journey'):
    """ The issue's example: attended the webinar -> quote; downloaded the e-book -> webinar; else the e-book. """
    return env['mautomate.cta'].create({'name': name, 'line_ids': [
        (0, 0, {'sequence': 10, 'condition': 'has', 'event_type': 'custom', 'name_pattern': 'Webinar attended',
                'label': 'Ask for a quote', 'url': '/contactus'}),
        (0, 0, {'sequence': 20, 'condition': 'has', 'event_type': 'download', 'name_pattern': '*e-book*',
                'label': 'Join the webinar', 'url': '/webinar', 'style': 'secondary'}),
        (0, 0, {'sequence': 30, 'condition': 'always', 'label': 'Free e-book', 'url': '/ebook'}),
    ]})


@tagged('post_install', '-at_install')
class TestCtaRules(MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cta = journey_cta(cls.env)

    def label(self, cta=None, browser_id=None, partner_id=None):
        return (cta or self.cta)._mautomate_pick_line(browser_id, partner_id).label

    def test_first_matching_line_wins(self):
        browser = self.new_browser_id()
        self.assertEqual(self.label(browser_id=browser), 'Free e-book')
        # Another browser's download, or a download of another file, is not this visitor's e-book.
        self.ingest(event_type='download', name='Big e-book.pdf', anonymous_id=self.new_browser_id())
        self.ingest(event_type='download', name='price-list.pdf', anonymous_id=browser)
        self.assertEqual(self.label(browser_id=browser), 'Free e-book')
        self.ingest(event_type='download', name='Big E-book.pdf', anonymous_id=browser)
        self.assertEqual(self.label(browser_id=browser), 'Join the webinar')
        # The webinar is attended by the contact (an API event, no browser); an event of the browser naming the
        # contact (a typed e-mail) is a claim: the contact's events count only once the browser is proven.
        self.Event._ingest([{'event_type': 'custom', 'source': 'api', 'name': 'Webinar attended', 'partner_id': self.partner.id}])
        self.assertEqual(self.label(browser_id=browser), 'Join the webinar')
        self.ingest(anonymous_id=browser, partner_id=self.partner.id)
        self.assertEqual(self.label(browser_id=browser), 'Join the webinar')
        self.env['mautomate.proven.browser']._prove(browser, self.partner, 'mail')
        self.assertEqual(self.label(browser_id=browser), 'Ask for a quote')
        # A logged-in contact is known without a browser.
        self.assertEqual(self.label(partner_id=self.partner.id), 'Ask for a quote')

    def test_unknown_visitor_gets_the_fallback(self):
        cta = self.env['mautomate.cta'].create({'name': 'Newcomers', 'line_ids': [
            (0, 0, {'sequence': 1, 'condition': 'has_not', 'event_type': 'page_view', 'url_pattern': '/pricing*',
                    'label': 'See our prices', 'url': '/pricing'}),
            (0, 0, {'sequence': 2, 'condition': 'always', 'label': 'Talk to us', 'url': '/contactus'}),
        ]})
        browser = self.new_browser_id()
        self.assertEqual(self.label(cta, browser_id=browser), 'See our prices')
        # Without a Browser ID (tracking refused) nothing is known: not even "has not".
        self.assertEqual(self.label(cta), 'Talk to us')
        self.ingest(anonymous_id=browser, url='https://shop.example.com/pricing?plan=pro')
        self.assertEqual(self.label(cta, browser_id=browser), 'Talk to us')

    def test_no_fallback_no_line(self):
        cta = self.env['mautomate.cta'].create({'name': 'Only for downloaders', 'line_ids': [
            (0, 0, {'condition': 'has', 'event_type': 'download', 'label': 'Thanks', 'url': '/'})]})
        self.assertFalse(cta._mautomate_pick_line(self.new_browser_id()))
        self.assertFalse(cta.mautomate_snippet_fallback())
        self.assertEqual(self.cta.mautomate_snippet_fallback(), {'label': 'Free e-book', 'url': '/ebook', 'style': 'primary'})

    def test_links_are_safe(self):
        """ Refused with a message, and no error in the log: the marketer's typo is not the database's. """
        with self.assertNoLogs('odoo.sql_db', 'ERROR'):
            for values in ({'url': 'javascript:alert(1)'}, {'url': ' JavaScript:alert(1)'}, {'condition': 'has', 'event_type': False}):
                with self.subTest(values=values), self.assertRaises(ValidationError), self.env.cr.savepoint():
                    self.cta.line_ids[0].write(values)
                    self.env.flush_all()
                with self.subTest(new=values), self.assertRaises(ValidationError), self.env.cr.savepoint():
                    self.env['mautomate.cta.line'].create({'cta_id': self.cta.id, 'label': 'Bad', 'condition': 'has',
                                                          'event_type': 'download', 'url': '/', **values})
        self.cta.line_ids[0].url = 'HTTPS://example.com/Pricing'


    def test_website_editors_read_ctas_visitors_do_not(self):
        designer = self.env['res.users'].create({'name': 'Dana Designer', 'login': 'dana.cta', 'groups_id': [
            (6, 0, [self.env.ref('base.group_user').id, self.env.ref('website.group_website_designer').id])]})
        CTA = self.env['mautomate.cta'].with_user(designer)
        self.assertIn(self.cta.id, [cta_id for cta_id, _name in CTA.name_search('journey')])
        self.assertEqual(self.cta.with_user(designer).mautomate_snippet_fallback()['label'], 'Free e-book')
        with self.assertRaises(AccessError):
            self.cta.with_user(designer).name = 'Mine'
        with self.assertRaises(AccessError):
            self.env['mautomate.cta'].with_user(self.env.ref('base.public_user')).search([])

    def test_token_names_the_browser(self):
        browser = self.new_browser_id()
        line = self.cta.line_ids[-1]
        token = self.cta._mautomate_token(line, self.env['mautomate.ab.test'], browser)
        self.assertEqual(self.cta._mautomate_read_token(token, browser)[:2], (self.cta, line))
        self.assertIsNone(self.cta._mautomate_read_token(token, self.new_browser_id()))
        forged = token.replace(f'{self.cta.id}.{line.id}.', f'{self.cta.id}.{self.cta.line_ids[0].id}.')
        self.assertIsNone(self.cta._mautomate_read_token(forged, browser))
        self.assertIsNone(self.cta._mautomate_read_token('1.2.3', browser))


@tagged('post_install', '-at_install')
class TestAbTest(MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cta = journey_cta(cls.env)
        action = cls.cta.action_new_ab_test()
        cls.test = cls.env['mautomate.ab.test'].browse(action['res_id'])
        cls.variant_a, cls.variant_b = cls.test.variant_ids
        cls.cta_b = cls.env['mautomate.cta'].browse(cls.variant_b.res_id)
        cls.cta_b.line_ids[-1].label = 'Get the free guide'

    def show(self, variant, views, clicks):
        """ `views` new browsers are shown `variant`, the first `clicks` of them click it. """
        cta = self.env['mautomate.cta'].browse(variant.res_id)
        line = cta.line_ids[-1]
        browsers = [self.new_browser_id() for _i in range(views)]
        self.Event._ingest(
            [cta._mautomate_event_vals('cta_view', line, self.test, browser, None, 'https://www.example.com/')
             for browser in browsers]
            + [cta._mautomate_event_vals('cta_click', line, self.test, browser, None, 'https://www.example.com/')
               for browser in browsers[:clicks]])
        return browsers

    def test_variants(self):
        self.assertEqual(self.test.variant_ids.mapped('name'), ['A', 'B'])
        self.assertEqual(self.variant_a.res_id, self.cta.id)
        self.assertEqual(self.cta_b.name, 'E-book journey (B)')
        self.assertEqual(len(self.cta_b.line_ids), 3)
        self.assertEqual(self.cta.ab_test_count, 1)
        self.test.action_start()
        with self.assertRaises(UserError):
            self.test.action_add_variant()

    def test_statistics_computed_by_hand(self):
        self.test.action_start()
        self.show(self.variant_a, 200, 30)
        browsers_b = self.show(self.variant_b, 200, 50)
        # A browser counts once, however often it saw or clicked the CTA; other tests' events do not count.
        cta_b, line_b = self.cta_b, self.cta_b.line_ids[-1]
        self.Event._ingest([cta_b._mautomate_event_vals(kind, line_b, self.test, browsers_b[0], None, None)
                            for kind in ('cta_view', 'cta_view', 'cta_click')]
                           + [cta_b._mautomate_event_vals('cta_click', line_b, self.env['mautomate.ab.test'],
                                                          browsers_b[-1], None, None)])
        rows = self.test._ab_statistics()[self.test.id]
        # By hand (and checked once in Python): rates 30/200 = 0.15 and 50/200 = 0.25. Wilson 95 % with
        # z = 1.959964: centre (p + z²/2n) / (1 + z²/n), half width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
        # z-test: pooled rate 80/400 = 0.2, standard error sqrt(0.2·0.8·(1/200 + 1/200)) = 0.04,
        # z = (0.25 - 0.15) / 0.04 = 2.5, two-sided p = erfc(2.5 / sqrt 2) = 0.012419.
        expected = [
            {'n': 200, 'conversions': 30, 'rate': 0.15, 'ci_low': 0.1071, 'ci_high': 0.2061, 'z': None, 'p': None},
            {'n': 200, 'conversions': 50, 'rate': 0.25, 'ci_low': 0.1951, 'ci_high': 0.3143, 'z': 2.5, 'p': 0.0124},
        ]
        for row, values in zip(rows, expected, strict=True):
            for key, value in values.items():
                if value is None:
                    self.assertIsNone(row[key], key)
                else:
                    self.assertAlmostEqual(row[key], value, places=4, msg=key)
        self.assertEqual([row['variant'] for row in rows], [self.variant_a, self.variant_b])
        self.assertAlmostEqual(self.variant_b.p_value, 0.0124, places=4)
        self.assertTrue(self.variant_a.is_control)
        self.assertEqual((self.variant_a.has_p_value, self.variant_b.has_p_value), (False, True))
        # Not significant: 30/200 against 35/200 gives z = 0.6777, p = 0.4980.
        z, p = self.test._ab_z_test(30, 200, 35, 200)
        self.assertAlmostEqual(z, 0.6777, places=4)
        self.assertAlmostEqual(p, 0.4980, places=4)
        self.assertEqual(self.test._ab_wilson_interval(0, 0), (0.0, 0.0))

    def test_winner_needs_the_minimum_sample_and_significance(self):
        self.test.action_start()
        # 15/99 against 40/99 is significant (p < 0.001), but 99 browsers are fewer than the minimum of 100.
        self.show(self.variant_a, 99, 15)
        self.show(self.variant_b, 99, 40)
        self.assertFalse(self.test._ab_evaluate())
        self.assertEqual(self.test.state, 'running')
        self.show(self.variant_a, 1, 0)
        self.show(self.variant_b, 1, 0)
        self.assertEqual(self.env['mautomate.ab.test']._cron_evaluate(), 1)
        self.assertRecordValues(self.test, [{'state': 'won', 'winner_id': self.variant_b.id}])
        self.assertTrue(self.variant_b.is_winner)
        # The winner is then shown to everyone, whichever variant a browser saw, and without a browser.
        for browser in [self.new_browser_id() for _i in range(10)] + [None]:
            shown, line, test = self.cta._mautomate_serve(browser)
            self.assertEqual((shown, line.label), (self.cta_b, 'Get the free guide'))
            self.assertFalse(test, "a decided test counts nothing more")

    def test_no_winner_without_significance(self):
        self.test.action_start()
        self.show(self.variant_a, 200, 30)
        self.show(self.variant_b, 200, 35)
        self.assertFalse(self.test._ab_evaluate())
        self.assertFalse(self.test.winner_id)

    def test_split_is_sticky_and_shared(self):
        self.test.action_start()
        seen = {}
        for browser in [self.new_browser_id() for _i in range(60)]:
            shown = {self.cta._mautomate_serve(browser)[0] for _call in range(5)}
            self.assertEqual(len(shown), 1, "a browser always sees the same variant")
            seen[browser] = shown.pop()
        self.assertEqual(set(seen.values()), {self.cta, self.cta_b}, "both variants are shown")
        # A browser without a Browser ID sees the control and is not counted.
        shown, _line, test = self.cta._mautomate_serve(None)
        self.assertEqual(shown, self.cta)
        self.assertFalse(test)
        # Stopped: everyone sees the tested CTA again.
        self.test.action_stop()
        self.assertTrue(all(self.cta._mautomate_serve(browser)[0] == self.cta for browser in seen))

    def test_one_running_test_per_element(self):
        self.test.action_start()
        other = self.env['mautomate.ab.test'].browse(self.cta.action_new_ab_test()['res_id'])
        with self.assertRaises(UserError):
            other.action_start()


@tagged('post_install', '-at_install')
class TestCtaRoute(MautomateHttpCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cta = journey_cta(cls.env)

    def offer(self, cta=None, browser_id=None):
        self.opener.cookies.clear()
        if browser_id:
            self.opener.cookies.set('mautomate_vid', browser_id)
        return self.make_jsonrpc_request(f'/mautomate/cta/{(cta or self.cta).id}', {'page_url': 'https://www.example.com/offers'})

    def click(self, token, browser_id):
        self.opener.cookies.clear()
        self.opener.cookies.set('mautomate_vid', browser_id)
        return self.url_open('/mautomate/cta/click', data=json.dumps({'token': token, 'url': 'https://www.example.com/offers'}),
                             headers={'Content-Type': 'text/plain'})

    def test_cta_changes_after_the_download(self):
        browser = uuid.uuid4().hex
        offer = self.offer(browser_id=browser)
        self.assertEqual((offer['label'], offer['url'], offer['style']), ('Free e-book', '/ebook', 'primary'))
        view = self.events([('event_type', '=', 'cta_view')])
        self.assertRecordValues(view, [{'anonymous_id': browser, 'res_model': 'mautomate.cta', 'res_id': self.cta.id,
                                        'name': 'Free e-book', 'url': 'https://www.example.com/offers'}])
        # The click comes back with the token of what was shown, for this browser only.
        self.assertEqual(self.click(offer['token'], browser).status_code, 202)
        self.click(offer['token'], uuid.uuid4().hex)
        self.click('garbage', browser)
        self.assertRecordValues(self.events([('event_type', '=', 'cta_click')]), [
            {'anonymous_id': browser, 'res_id': self.cta.id, 'name': 'Free e-book'}])
        self.env['mautomate.event']._ingest([{'event_type': 'download', 'name': 'The e-book.pdf', 'anonymous_id': browser}])
        self.assertEqual(self.offer(browser_id=browser)['label'], 'Join the webinar')

    def test_browser_without_cookie_gets_the_fallback(self):
        browser = uuid.uuid4().hex
        self.env['mautomate.event']._ingest([{'event_type': 'download', 'name': 'The e-book.pdf', 'anonymous_id': browser}])
        offer = self.offer()
        self.assertEqual(offer['label'], 'Free e-book')
        self.assertIsNone(offer['token'])
        self.assertFalse(self.events([('event_type', '=', 'cta_view')]))
        # Do-Not-Track: the same, even with the cookie.
        self.opener.cookies.set('mautomate_vid', browser)
        offer = self.make_jsonrpc_request(f'/mautomate/cta/{self.cta.id}', {}, headers={'DNT': '1'})
        self.assertEqual(offer['label'], 'Free e-book')
        self.assertFalse(self.events([('event_type', '=', 'cta_view')]))
        # Archived or unknown: nothing to show, the block keeps its content.
        self.assertEqual(self.make_jsonrpc_request('/mautomate/cta/999999999', {}), {})

    def test_ab_split_is_sticky_over_requests(self):
        test = self.env['mautomate.ab.test'].browse(self.cta.action_new_ab_test()['res_id'])
        cta_b = self.env['mautomate.cta'].browse(test.variant_ids[1].res_id)
        cta_b.line_ids[-1].label = 'Get the free guide'
        test.action_start()
        browser = uuid.uuid4().hex
        labels = {self.offer(browser_id=browser)['label'] for _call in range(20)}
        self.assertEqual(len(labels), 1)
        views = self.events([('event_type', '=', 'cta_view')])
        self.assertEqual(len(views), 1, "twenty views of one browser within 30 minutes are one event")
        self.assertEqual({view.payload['ab_test'] for view in views}, {test.id})
        rows = test._ab_statistics()[test.id]
        self.assertEqual(sorted(row['n'] for row in rows), [0, 1], "twenty views of one browser are one sample")
