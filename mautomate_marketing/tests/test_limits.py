import json
import time

from odoo.tests import tagged

from ..controllers.identify import identify_signature
from .common import MautomateHttpCase
from .test_cta import journey_cta

TRACK = '/mautomate/track'
FORM_URL = '/mautomate/form/ebook'


@tagged('post_install', '-at_install')
class TestFloodLimits(MautomateHttpCase):
    """ One address floods what anonymous requests store: each kind has its own limit per minute, and the beacon's
    counts events. The requests share the test's transaction, hence its now(): one minute, whatever the clock says. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cta = journey_cta(cls.env, 'Flooded CTA')
        cls.popup = cls.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')

    def set_limit(self, scope, limit):
        self.env['ir.config_parameter'].set_param(f'mautomate_marketing.rate_limit_{scope}', limit)

    def as_browser(self, browser_id):
        self.opener.cookies.clear()
        self.opener.cookies.set('mautomate_vid', browser_id)

    def view_cta(self, browser_id, cta=None, page_url='https://www.example.com/'):
        self.as_browser(browser_id)
        return self.make_jsonrpc_request(f'/mautomate/cta/{(cta or self.cta).id}', {'page_url': page_url})

    def click_cta(self, token, browser_id):
        self.as_browser(browser_id)
        return self.url_open('/mautomate/cta/click', data=json.dumps({'token': token, 'url': 'https://www.example.com/'}),
                             headers={'Content-Type': 'text/plain'})

    def view_form(self, browser_id):
        self.as_browser(browser_id)
        response = self.url_open(FORM_URL)
        self.assertEqual(response.status_code, 200)
        return response

    def show_popup(self, browser_id, popup=None):
        popup = popup or self.popup
        self.as_browser(browser_id)
        return self.post_json('/mautomate/popup/shown', {'token': popup._mautomate_sign((popup.id, 0), browser_id)})

    def test_beacon_limit_counts_events(self):
        """ 3,000 requests a minute of 100 events each were 300,000 events: the limit is on events. """
        self.set_limit('track', 150)
        browser_id = self.new_browser_id()

        def beacon(count):
            return self.post_json(TRACK, {'vid': browser_id, 'events': [
                {'type': 'page_view', 'url': f'https://shop.example.com/{index}'} for index in range(count)]})

        first = beacon(100)
        self.assertEqual((first.status_code, first.json()), (202, {'stored': 100}))
        for count in (100, 1):
            response = beacon(count)
            self.assertEqual(response.status_code, 429, "over the address's budget of events")
            self.assertEqual(response.headers['Retry-After'], '60')
        self.assertEqual(len(self.events([('anonymous_id', '=', browser_id)])), 100, "a refused request stores nothing")

    def test_cta_views_and_clicks_have_their_limits(self):
        self.set_limit('cta_view', 3)
        self.set_limit('cta_click', 1)
        browsers = [self.new_browser_id() for _index in range(5)]
        offers = [self.view_cta(browser_id) for browser_id in browsers]
        self.assertEqual({offer['label'] for offer in offers}, {'Free e-book'}, "over the limit the CTA is still shown")
        self.assertEqual(self.events([('event_type', '=', 'cta_view')]).mapped('anonymous_id'), browsers[2::-1])
        self.assertEqual([bool(offer['token']) for offer in offers], [True, True, True, False, False],
                         "a view that was not logged gets no click either")
        self.assertEqual(self.click_cta(offers[0]['token'], browsers[0]).status_code, 202)
        flood = self.click_cta(offers[1]['token'], browsers[1])
        self.assertEqual((flood.status_code, flood.headers['Retry-After']), (429, '60'))
        self.assertEqual(self.events([('event_type', '=', 'cta_click')]).mapped('anonymous_id'), browsers[:1])

    def test_form_and_popup_views_have_their_limits(self):
        self.set_limit('form_view', 2)
        self.set_limit('popup_view', 2)
        browsers = [self.new_browser_id() for _index in range(4)]
        for browser_id in browsers:
            self.assertIn('mautomate_token', self.view_form(browser_id).text, "over the limit the form is still shown")
        self.assertEqual(len(self.events([('event_type', '=', 'form_view')])), 2)
        statuses = [self.show_popup(browser_id).status_code for browser_id in browsers]
        self.assertEqual(statuses, [202, 202, 429, 429])
        self.assertEqual(len(self.events([('event_type', '=', 'popup_view')])), 2)

    def test_identify_has_its_limit(self):
        self.set_limit('identify', 2)
        secret = self.env['res.config.settings']._mautomate_get_identify_secret()
        browser_id, now = self.new_browser_id(), int(time.time())
        statuses = []
        for email in ('one@shop.example.com', 'two@shop.example.com', 'three@shop.example.com'):
            body = {'vid': browser_id, 'email': email, 'timestamp': now,
                    'signature': identify_signature(secret, email, browser_id, now)}
            statuses.append(self.post_json('/mautomate/identify', body).status_code)
        self.assertEqual(statuses, [200, 200, 429])
        self.assertFalse(self.env['res.partner'].search([('email_normalized', '=', 'three@shop.example.com')]))

    def test_repeated_views_of_one_browser_are_one_event(self):
        """ Reloading a page over and over: within 30 minutes, each CTA, form and pop-up of the page is seen once by a
        browser. """
        browser_id, other_browser = self.new_browser_id(), self.new_browser_id()
        other_cta = journey_cta(self.env, 'Another CTA')
        for _reload in range(3):
            self.assertTrue(self.view_cta(browser_id)['token'], "the click of a repeated view is still logged")
            self.view_cta(browser_id, other_cta)
            self.view_form(browser_id)
            self.assertEqual(self.show_popup(browser_id).status_code, 202)
        self.view_cta(other_browser)
        views = self.events([('event_type', 'in', ('cta_view', 'form_view', 'popup_view'))])
        self.assertEqual(sorted((view.event_type, view.res_id, view.anonymous_id == browser_id) for view in views), sorted([
            ('cta_view', self.cta.id, True), ('cta_view', other_cta.id, True), ('cta_view', self.cta.id, False),
            ('form_view', self.env.ref('mautomate_marketing.mautomate_form_demo_ebook').id, True),
            ('popup_view', self.popup.id, True)]))
        # On another page, or half an hour later, it is a new view.
        self.view_cta(browser_id, page_url='https://www.example.com/pricing')
        self.env.cr.execute("UPDATE mautomate_event SET occurred_at = occurred_at - interval '31 minutes' WHERE id = ANY(%s)",
                            [views.ids])
        self.view_cta(browser_id)
        self.assertEqual(len(self.events([('event_type', '=', 'cta_view'), ('res_id', '=', self.cta.id)])), 4)

    def test_ipv6_addresses_are_limited_per_64(self):
        """ An IPv6 subscriber gets a /64: changing address within it does not reset the count. """
        self.set_limit('identify', 2)
        Limit = self.env['mautomate.rate.limit']
        self.assertFalse(Limit._hit('identify', '2001:db8:7:1::1'))
        self.assertFalse(Limit._hit('identify', '2001:DB8:7:1:ffff:ffff:ffff:fffe'))
        self.assertTrue(Limit._hit('identify', '2001:db8:7:1:abcd::42'), "the same /64")
        self.assertFalse(Limit._hit('identify', '2001:db8:7:2::1'), "another /64 has its own count")
        # An IPv4 address counts alone, written as IPv4 or as IPv4-mapped IPv6.
        self.assertFalse(Limit._hit('identify', '198.51.100.7'))
        self.assertFalse(Limit._hit('identify', '::ffff:198.51.100.7'))
        self.assertTrue(Limit._hit('identify', '198.51.100.7'))
        self.assertFalse(Limit._hit('identify', '198.51.100.8'))
