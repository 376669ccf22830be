import json
import re

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import MautomateCase, MautomateHttpCase

NO_TRACKING = {'X-Disable-Tracking': '1'}


class AbMixin:

    def new_test(self, element):
        """ A draft A/B test of `element` and its variant B (a copy). """
        test = self.env['mautomate.ab.test'].browse(element.action_new_ab_test()['res_id'])
        return test, element.browse(test.variant_ids[1].res_id)

    def browser_seeing(self, test, index):
        """ A new Browser ID that `test` splits into its variant number `index` (0: A). """
        while True:
            browser = self.new_browser_id()
            if self.env['mautomate.ab.test']._ab_bucket(test.id, browser, len(test.variant_ids)) == index:
                return browser


@tagged('post_install', '-at_install')
class TestAbStatisticsOfPopups(AbMixin, MautomateCase):

    def test_popup_conversions_are_its_forms_sent_from_it(self):
        popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')
        ebook = popup.form_id
        test, popup_b = self.new_test(popup)
        test.action_start()

        def show(shown, views, conversions):
            browsers = [self.new_browser_id() for _i in range(views)]
            self.Event._ingest(
                [{'event_type': 'popup_view', 'anonymous_id': browser, 'res_model': 'mautomate.popup', 'res_id': shown.id,
                  'payload': {'ab_test': test.id}} for browser in browsers]
                + [{'event_type': 'form_submit', 'anonymous_id': browser, 'res_model': 'mautomate.form', 'res_id': ebook.id,
                    'payload': {'ab_test': test.id, 'popup': shown.id}} for browser in browsers[:conversions]])
            return browsers

        show(popup, 40, 4)
        browsers_b = show(popup_b, 40, 12)
        # Not conversions: the form sent on its own page by a browser shown B, and a submit of another test.
        self.Event._ingest([
            {'event_type': 'form_submit', 'anonymous_id': browsers_b[-1], 'res_model': 'mautomate.form', 'res_id': ebook.id},
            {'event_type': 'form_submit', 'anonymous_id': browsers_b[-2], 'res_model': 'mautomate.form', 'res_id': ebook.id,
             'payload': {'ab_test': test.id + 1000, 'popup': popup_b.id}},
        ])
        rows = test._ab_statistics()[test.id]
        # By hand: rates 4/40 = 0.1 and 12/40 = 0.3. Wilson 95 % (z = 1.959964): centre (p + z²/2n) / (1 + z²/n),
        # half width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n): 0.1 -> 0.0396 .. 0.2305, 0.3 -> 0.1807 .. 0.4543.
        # z-test: pooled 16/80 = 0.2, standard error sqrt(0.2·0.8·(1/40 + 1/40)) = 0.08944, z = 0.2 / 0.08944 = 2.2361,
        # two-sided p = erfc(2.2361 / sqrt 2) = 0.0253.
        expected = [
            {'n': 40, 'conversions': 4, 'rate': 0.1, 'ci_low': 0.0396, 'ci_high': 0.2305},
            {'n': 40, 'conversions': 12, 'rate': 0.3, 'ci_low': 0.1807, 'ci_high': 0.4543, 'z': 2.2361, 'p': 0.0253},
        ]
        for row, values in zip(rows, expected, strict=True):
            for key, value in values.items():
                self.assertAlmostEqual(row[key], value, places=4, msg=key)
        self.assertEqual([row['variant'].res_id for row in rows], [popup.id, popup_b.id])


@tagged('post_install', '-at_install')
class TestFormAbTest(AbMixin, MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        self.ebook.min_fill_seconds = 0
        self.test, self.ebook_b = self.new_test(self.ebook)
        # Variant B asks two questions at once instead of three.
        self.ebook_b.questions_per_page = 2

    def open_embed(self):
        """ (slug of the form shown, its HTML) of the e-book block, for the browser of the session's cookie. """
        response = self.url_open('/mautomate/form/ebook/embed', headers=NO_TRACKING)
        self.assertEqual(response.status_code, 200)
        return re.search(r'data-slug="([a-z0-9-]+)"', response.text).group(1), response.text

    @staticmethod
    def hidden(name, html):
        return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)

    def test_minimum_views_must_be_positive(self):
        with self.assertNoLogs('odoo.sql_db', 'ERROR'), self.assertRaisesRegex(ValidationError, 'must be positive'), \
                self.env.cr.savepoint():
            self.test.min_views = 0
            self.env.flush_all()

    def test_variant_is_a_copy_with_its_own_address(self):
        self.assertEqual(self.ebook_b.name, self.ebook.name, "visitors of B read the same title, not that they are in a test")
        self.assertEqual(self.ebook_b.slug, 'ebook-b')
        self.assertEqual(len(self.ebook_b.question_ids), len(self.ebook.question_ids))
        self.assertEqual(self.ebook.ab_test_count, 1)
        self.assertFalse(any(self.test.variant_ids.mapped('has_p_value')), "shown to no one yet: no p-value to read as significant")
        # Not started: everyone sees the tested form.
        self.opener.cookies.set('mautomate_vid', self.browser_seeing(self.test, 1))
        self.assertEqual(self.open_embed()[0], 'ebook')

    def test_split_is_sticky_and_counted(self):
        self.test.action_start()
        browser_a, browser_b = self.browser_seeing(self.test, 0), self.browser_seeing(self.test, 1)
        self.opener.cookies.set('mautomate_vid', browser_a)
        self.assertEqual({self.open_embed()[0] for _call in range(3)}, {'ebook'})
        self.opener.cookies.set('mautomate_vid', browser_b)
        slugs = set()
        for _call in range(3):
            slug, page = self.open_embed()
            slugs.add(slug)
        self.assertEqual(slugs, {self.ebook_b.slug}, "a browser always sees the same variant")
        self.assertEqual(re.findall(r'data-name="([a-z_]+)"', page), ['email', 'name', 'consent'], "B's own questions")
        self.assertIn(f'data-embed-url="/mautomate/form/{self.ebook_b.slug}/embed"', page, "B is sent to B")

        views = self.events([('event_type', '=', 'form_view')])
        self.assertEqual(len(views), 2, "three views of one browser within 30 minutes are one event")
        self.assertEqual({(view.anonymous_id, view.res_id) for view in views},
                         {(browser_a, self.ebook.id), (browser_b, self.ebook_b.id)})
        self.assertEqual({view.payload['ab_test'] for view in views}, {self.test.id})

        sent = self.url_open(f'/mautomate/form/{self.ebook_b.slug}/embed', headers=NO_TRACKING, data={
            'csrf_token': self.hidden('csrf_token', page), 'mautomate_token': self.hidden('mautomate_token', page),
            'email': 'bea@example.com', 'name': 'Bea', 'consent': '1'})
        self.assertIn('o_mautomate_form_thanks', sent.text)
        submit = self.events([('event_type', '=', 'form_submit')])
        self.assertRecordValues(submit, [{'res_id': self.ebook_b.id, 'anonymous_id': browser_b}])
        self.assertEqual(submit.payload['ab_test'], self.test.id)
        self.assertEqual([(row['n'], row['conversions']) for row in self.test._ab_statistics()[self.test.id]],
                         [(1, 0), (1, 1)], "three views of one browser are one sample")

        # Decided for B: everyone sees B, and nothing more is counted.
        self.test.write({'state': 'won', 'winner_id': self.test.variant_ids[1].id})
        self.opener.cookies.set('mautomate_vid', browser_a)
        slug, page = self.open_embed()
        self.assertEqual(slug, self.ebook_b.slug)
        self.assertNotIn('ab_test', self.events([('event_type', '=', 'form_view')])[0].payload)
        # Stopped: the tested form again.
        self.test.action_stop()
        self.assertEqual(self.open_embed()[0], 'ebook')

    def test_first_visit_keeps_one_browser(self):
        self.test.action_start()
        response = self.url_open('/mautomate/form/ebook')
        self.assertEqual(response.status_code, 200)
        browser = self.opener.cookies.get('mautomate_vid')
        self.assertTrue(browser)
        self.assertEqual(response.headers.get('Set-Cookie', '').count('mautomate_vid='), 1, "one Browser ID, not two")
        events = self.events([('event_type', 'in', ('page_view', 'form_view'))])
        self.assertEqual(sorted(events.mapped('event_type')), ['form_view', 'page_view'])
        self.assertEqual(set(events.mapped('anonymous_id')), {browser}, "the view and the split name the browser it keeps")
        self.assertEqual({self.url_open('/mautomate/form/ebook').text.count(f'data-slug="{slug}"')
                          for slug in ('ebook', self.ebook_b.slug)} - {0}, {1})

    def test_refused_tracking_sees_the_tested_form_uncounted(self):
        self.test.action_start()
        self.opener.cookies.set('mautomate_vid', self.browser_seeing(self.test, 1))
        response = self.url_open('/mautomate/form/ebook/embed', headers={**NO_TRACKING, 'DNT': '1'})
        self.assertIn('data-slug="ebook"', response.text)
        self.assertFalse(self.events([('event_type', '=', 'form_view')]))


@tagged('post_install', '-at_install')
class TestPopupAbTest(AbMixin, MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')
        self.ebook = self.popup.form_id
        self.ebook.min_fill_seconds = 0
        self.test, self.popup_b = self.new_test(self.popup)
        self.popup_b.write({'trigger': 'delay', 'delay_seconds': 5})

    def popups(self, path='/'):
        response = self.url_open(f'/mautomate/popup?path={path}', headers=NO_TRACKING)
        return {popup['id']: popup for popup in json.loads(response.text)['popups']}

    def test_variant_shows_only_through_its_test(self):
        self.assertEqual(list(self.popups()), [self.popup.id], "a draft test's variant shows to nobody")
        self.test.action_start()
        browser_a, browser_b = self.browser_seeing(self.test, 0), self.browser_seeing(self.test, 1)
        self.opener.cookies.set('mautomate_vid', browser_b)
        for _call in range(3):
            offered = self.popups()
            self.assertEqual(list(offered), [self.popup_b.id])
        self.assertEqual((offered[self.popup_b.id]['trigger'], offered[self.popup_b.id]['delay']), ('delay', 5))
        self.opener.cookies.set('mautomate_vid', browser_a)
        self.assertEqual(list(self.popups()), [self.popup.id])
        self.test.action_stop()
        self.opener.cookies.set('mautomate_vid', browser_b)
        self.assertEqual(list(self.popups()), [self.popup.id], "stopped: the tested pop-up for everyone")

    def test_deleting_the_test_archives_its_variant(self):
        self.test.action_start()
        self.test.action_stop()
        self.test.unlink()
        self.assertFalse(self.popup_b.active, "B was made for the test: it does not become a pop-up of its own")
        self.assertTrue(self.popup.active)
        self.assertEqual(list(self.popups()), [self.popup.id])

    def test_view_and_submit_from_the_popup_are_counted(self):
        self.test.action_start()
        browser = self.browser_seeing(self.test, 1)
        self.opener.cookies.set('mautomate_vid', browser)
        token = self.popups()[self.popup_b.id]['token']

        # Another browser's token, or a forged one, logs nothing.
        for other in (self.popup._mautomate_sign((self.popup_b.id, self.test.id), self.new_browser_id()), f'{token}0', 'x'):
            response = self.post_json('/mautomate/popup/shown', {'token': other})
            self.assertEqual(json.loads(response.text), {'stored': 0})
        response = self.post_json('/mautomate/popup/shown', {'token': token, 'url': f'{self.base_url()}/shop'})
        self.assertEqual((response.status_code, json.loads(response.text)), (202, {'stored': 1}))
        view = self.events([('event_type', '=', 'popup_view')])
        self.assertRecordValues(view, [{'res_model': 'mautomate.popup', 'res_id': self.popup_b.id, 'anonymous_id': browser,
                                        'name': self.popup_b.name}])
        self.assertEqual(view.payload['ab_test'], self.test.id)
        self.assertTrue(view.url.endswith('/shop'))

        # The pop-up's form names the pop-up when sent, also after an error.
        page = self.url_open(f'/mautomate/form/ebook/embed?popup={token}', headers=NO_TRACKING).text
        data = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1)
                for name in ('csrf_token', 'mautomate_token', 'popup')}
        self.assertEqual(data['popup'], token)
        invalid = self.url_open('/mautomate/form/ebook/embed', headers=NO_TRACKING, data={**data, 'email': 'nope'})
        self.assertEqual(invalid.status_code, 400)
        self.assertIn(f'name="popup" value="{token}"', invalid.text)
        sent = self.url_open('/mautomate/form/ebook/embed', headers=NO_TRACKING,
                             data={**data, 'email': 'pia@example.com', 'name': 'Pia', 'consent': '1'})
        self.assertIn('o_mautomate_form_thanks', sent.text)
        submit = self.events([('event_type', '=', 'form_submit')])
        self.assertEqual((submit.res_id, submit.payload['popup'], submit.payload['ab_test']),
                         (self.ebook.id, self.popup_b.id, self.test.id))
        self.assertEqual([(row['n'], row['conversions']) for row in self.test._ab_statistics()[self.test.id]],
                         [(0, 0), (1, 1)])
        self.assertFalse(self.popups(), "sent: the pop-up is not offered again")

    def test_variant_with_its_own_form_is_not_offered_after_a_submit(self):
        """ A pop-up's form sent in any of the form's A/B variants counts as sent. """
        form_test, ebook_b = self.new_test(self.ebook)
        form_test.action_start()
        browser = self.browser_seeing(form_test, 1)
        self.opener.cookies.set('mautomate_vid', browser)
        self.env['mautomate.event']._ingest([{'event_type': 'form_submit', 'anonymous_id': browser, 'res_model': 'mautomate.form',
                             'res_id': ebook_b.id}])
        self.assertFalse(self.popups())

    def test_overlapping_tests_are_refused(self):
        form_test, _ebook_b = self.new_test(self.ebook)
        form_test.action_start()
        with self.assertRaisesRegex(UserError, "form of pop-up"):
            self.test.action_start()
        form_test.action_stop()
        self.test.action_start()
        other_form_test, _ebook_c = self.new_test(self.ebook)
        with self.assertRaisesRegex(UserError, "pop-up showing form"):
            other_form_test.action_start()


@tagged('post_install', '-at_install')
class TestAbStatisticsReadWebsiteNumbers(AbMixin, MautomateHttpCase):

    def test_api_events_with_text_values_neither_break_nor_count(self):
        """ An API key posts a 'form_submit' naming a running pop-up test with a text pop-up id: the statistics
        (and the nightly evaluation) used to fail on it; API events are not counted at all. """
        popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')
        test, popup_b = self.new_test(popup)
        test.action_start()
        key = self.env['mautomate.api.key'].create({'name': 'A/B poison'})
        token = key.action_generate_token()['context']['default_token']
        browser_id = self.browser_seeing(test, 1)
        response = self.post_json('/mautomate/api/v1/events', {'events': [
            {'type': 'form_submit', 'email': 'poison@example.com', 'name': 'Sent', 'payload': {'ab_test': test.id, 'popup': 'x'}},
            {'type': 'form_submit', 'email': 'poison@example.com', 'name': 'Sent',
             'payload': {'ab_test': test.id, 'popup': popup_b.id}},
        ]}, headers={'Authorization': f'Bearer {token}'})
        self.assertEqual(response.status_code, 201, response.text)
        self.env['mautomate.event']._ingest([
            {'event_type': 'popup_view', 'anonymous_id': browser_id, 'res_model': 'mautomate.popup', 'res_id': popup_b.id,
             'payload': {'ab_test': test.id}},
            {'event_type': 'form_submit', 'anonymous_id': browser_id, 'res_model': 'mautomate.form', 'res_id': popup.form_id.id,
             'payload': {'ab_test': test.id, 'popup': popup_b.id}},
        ])
        with self.assertNoLogs('odoo.sql_db', 'ERROR'):
            rows = test._ab_statistics()[test.id]
            self.assertFalse(self.env['mautomate.ab.test']._cron_evaluate())
        self.assertEqual([(row['n'], row['conversions']) for row in rows], [(0, 0), (1, 1)], "the website's events only")
