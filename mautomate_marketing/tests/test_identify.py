import hashlib
import hmac
import json
import time

from odoo.tests import tagged

from ..controllers.identify import identify_signature
from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestIdentify(MautomateHttpCase):
    """ tracker.js identify(email, signature, timestamp) on a site that is not on Odoo. """

    def setUp(self):
        super().setUp()
        self.browser_id = self.new_browser_id()
        self.post_json('/mautomate/track', {'vid': self.browser_id, 'events': [
            {'type': 'page_view', 'url': 'https://shop.example.com/pricing', 'name': 'Pricing'}]})
        self.history = self.events([('anonymous_id', '=', self.browser_id)])
        self.assertEqual(len(self.history), 1)
        self.now = int(time.time())

    def sign(self, email, browser_id=None, timestamp=None):
        """ What the other site's server computes: the HMAC of 'email|browser id|unix seconds'. """
        secret = self.env['res.config.settings']._mautomate_get_identify_secret()
        return identify_signature(secret, email, browser_id or self.browser_id, timestamp or self.now)

    def identify(self, email, signature=None, browser_id=None, timestamp=None, origin=None):
        body = {'vid': browser_id or self.browser_id, 'email': email, 'timestamp': timestamp or self.now}
        if signature is not None:
            body['signature'] = signature
        # tracker.js sends text/plain to stay a simple cross-site request.
        headers = {'Content-Type': 'text/plain', **({'Origin': origin} if origin else {})}
        return self.url_open('/mautomate/identify', data=json.dumps(body), headers=headers)

    def contact(self, email):
        return self.env['res.partner'].search([('email_normalized', '=', email)])

    def test_signed_identify_attaches_the_browser_history(self):
        response = self.identify('Iris@Shop.example.com', self.sign('iris@shop.example.com'))
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json(), {'identified': True, 'attached': 1})
        iris = self.contact('iris@shop.example.com')
        self.assertEqual(len(iris), 1)
        self.history.invalidate_recordset()
        self.assertEqual(self.history.partner_id, iris)
        self.post_json('/mautomate/track', {'vid': self.browser_id, 'events': [{'type': 'page_view', 'url': 'https://shop.example.com/'}]})
        self.assertEqual(self.events([('anonymous_id', '=', self.browser_id)]).partner_id, iris, "later beacons are hers")

    def test_unsigned_or_wrongly_signed_identify_changes_nothing(self):
        for signature, status in [(None, 403), ('', 403), (self.sign('someone.else@shop.example.com'), 403),
                                  ('0' * 64, 403), ('ä' * 10, 403)]:
            response = self.identify('iris@shop.example.com', signature)
            self.assertEqual(response.status_code, status, response.text)
            self.assertIn('signature', response.json()['error'])
        for body_email, browser_id in [('not an e-mail', None), ('iris@shop.example.com', 'NOT-A-BROWSER-ID')]:
            self.assertEqual(self.identify(body_email, self.sign('iris@shop.example.com'), browser_id).status_code, 422)
        self.assertEqual(self.url_open('/mautomate/identify', data='{oops').status_code, 400)
        self.assertFalse(self.contact('iris@shop.example.com'))
        self.history.invalidate_recordset()
        self.assertFalse(self.history.partner_id)

    def test_old_foreign_or_future_signatures_change_nothing(self):
        """ A signature leaked from a page (or a log) is of one browser and expires: replayed, it changes nothing. """
        email = 'iris@shop.example.com'
        secret = self.env['res.config.settings']._mautomate_get_identify_secret()
        other_browser = self.new_browser_id()
        cases = [
            ("made 11 minutes ago", self.sign(email, timestamp=self.now - 660), self.now - 660, None),
            ("made for 2 minutes ahead", self.sign(email, timestamp=self.now + 120), self.now + 120, None),
            ("made for another browser", self.sign(email, browser_id=other_browser), self.now, None),
            ("of the e-mail alone (the old signature)", hmac.new(secret.encode(), email.encode(), hashlib.sha256).hexdigest(),
             self.now, None),
            ("of another time", self.sign(email, timestamp=self.now - 5), self.now, None),
        ]
        for label, signature, timestamp, browser_id in cases:
            with self.subTest(label):
                response = self.identify(email, signature, browser_id=browser_id, timestamp=timestamp)
                self.assertEqual(response.status_code, 403, response.text)
                self.assertIn('signature', response.json()['error'])
        self.assertEqual(self.identify(email, self.sign(email), timestamp='now').status_code, 422)
        self.assertFalse(self.contact(email))
        self.history.invalidate_recordset()
        self.assertFalse(self.history.partner_id)
        # Nine minutes old, or a few seconds ahead of this clock, it is accepted.
        self.assertEqual(self.identify(email, self.sign(email, timestamp=self.now - 540), timestamp=self.now - 540).status_code, 200)
        self.assertEqual(self.identify(email, self.sign(email, timestamp=self.now + 20), timestamp=self.now + 20).status_code, 200)

    def test_only_listed_origins_may_identify(self):
        """ A page of another site calls identify() with a valid signature: refused, and never told anything. """
        email = 'iris@shop.example.com'
        self.env['ir.config_parameter'].set_param('mautomate_marketing.identify_origins',
                                                  'https://Shop.example.com/,\nhttps://www.example.com:8443')
        for origin in ('https://evil.example.net', 'https://shop.example.com.evil.example.net', 'null',
                       'http://shop.example.com'):
            with self.subTest(origin=origin):
                response = self.identify(email, self.sign(email), origin=origin)
                self.assertEqual(response.status_code, 403, response.text)
                self.assertNotIn('Access-Control-Allow-Origin', response.headers)
                self.assertNotIn('Access-Control-Allow-Credentials', response.headers)
        self.assertFalse(self.contact(email))
        response = self.identify(email, self.sign(email), origin='https://shop.example.com')
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers['Access-Control-Allow-Origin'], 'https://shop.example.com')
        self.assertEqual(response.headers['Access-Control-Allow-Credentials'], 'true')
        self.assertIn('Origin', response.headers['Vary'])
        self.assertEqual(self.identify(email, self.sign(email), origin='https://www.example.com:8443').status_code, 200)
        # The other site's server itself (no page, no Origin) gets no CORS header.
        response = self.identify(email, self.sign(email))
        self.assertEqual(response.status_code, 200)
        self.assertNotIn('Access-Control-Allow-Origin', response.headers)

    def test_renewed_secret_refuses_old_signatures(self):
        old_signature = self.sign('iris@shop.example.com')
        self.env['res.config.settings'].create({}).action_mautomate_renew_identify_secret()
        self.assertEqual(self.identify('iris@shop.example.com', old_signature).status_code, 403)
        self.assertEqual(self.identify('iris@shop.example.com', self.sign('iris@shop.example.com')).status_code, 200)

    def test_tracker_snippet(self):
        snippet = self.env['mautomate.event']._get_tracker_snippet()
        base_url = self.env['mautomate.event'].get_base_url()
        self.assertEqual(snippet, (
            f'<script async="async" data-require-consent="false" src="{base_url}/mautomate_marketing/static/src/tracker/tracker.js" '
            f'data-endpoint="{base_url}/mautomate/track"></script>'))
