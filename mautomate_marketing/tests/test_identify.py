import hashlib
import hmac
import json

from odoo.tests import tagged

from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestIdentify(MautomateHttpCase):
    """ tracker.js identify(email, signature) on a site that is not on Odoo. """

    def setUp(self):
        super().setUp()
        self.browser_id = self.new_browser_id()
        self.post_json('/mautomate/track', {'vid': self.browser_id, 'events': [
            {'type': 'page_view', 'url': 'https://shop.example.com/pricing', 'name': 'Pricing'}]})
        self.history = self.events([('anonymous_id', '=', self.browser_id)])
        self.assertEqual(len(self.history), 1)

    def sign(self, email):
        secret = self.env['res.config.settings']._mautomate_get_identify_secret()
        return hmac.new(secret.encode(), email.encode(), hashlib.sha256).hexdigest()

    def identify(self, email, signature=None, browser_id=None):
        body = {'vid': browser_id or self.browser_id, 'email': email}
        if signature is not None:
            body['signature'] = signature
        # tracker.js sends text/plain to stay a simple cross-site request.
        return self.url_open('/mautomate/identify', data=json.dumps(body), headers={'Content-Type': 'text/plain'})

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
