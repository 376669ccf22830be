import re
from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.mautomate_marketing.models.mautomate_event import MautomateEvent

from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestWebsiteTracking(MautomateHttpCase):

    def test_every_page_is_tracked_with_a_durable_browser_id(self):
        self.assertEqual(self.url_open('/').status_code, 200)
        browser_id = self.opener.cookies.get('mautomate_vid')
        self.assertRegex(browser_id, r'^[0-9a-f]{32}$')
        self.url_open('/contactus?utm_campaign=Spring')
        views = self.events([('anonymous_id', '=', browser_id)])
        self.assertEqual(len(views), 2)
        self.assertEqual(set(views.mapped('event_type')), {'page_view'})
        self.assertEqual(views[0].url, f'{self.base_url()}/contactus?utm_campaign=Spring')
        self.assertTrue(views[0].visitor_id, "the Odoo website visitor is reused")
        self.assertFalse(views.partner_id)
        self.assertEqual(self.opener.cookies.get('mautomate_vid'), browser_id, "the cookie is kept")

    def test_utm_cookies_give_the_campaign(self):
        campaign = self.env['utm.campaign'].create({'name': 'Black Friday'})
        self.url_open('/?utm_campaign=Black Friday')
        self.url_open('/contactus')
        self.assertEqual(self.events([('url', 'like', '/contactus')]).campaign_id, campaign)

    def test_refused_tracking(self):
        self.url_open('/', headers={'DNT': '1'})
        self.url_open('/', headers={'Sec-GPC': '1'})
        self.url_open('/', headers={'X-Disable-Tracking': '1'})
        self.url_open('/', headers={'User-Agent': 'Googlebot/2.1'})
        self.url_open('/web/webclient/version_info', data='{}', headers={'Content-Type': 'application/json'})
        self.assertFalse(self.events())
        self.assertFalse(self.opener.cookies.get('mautomate_vid'))
        # The same page without those headers is tracked: the headers are what stopped it.
        self.url_open('/')
        self.assertEqual(len(self.events()), 1)
        self.assertTrue(self.opener.cookies.get('mautomate_vid'))

    def test_cookie_bar_refusal_is_respected(self):
        self.env['website'].get_current_website().cookies_bar = True
        self.url_open('/')
        self.assertFalse(self.events())
        self.opener.cookies.set('website_cookies_bar', '{"required": true, "optional": true}')
        self.url_open('/')
        self.assertEqual(len(self.events()), 1)

    def test_logged_in_user_is_tracked_as_its_partner(self):
        self.authenticate('portal', 'portal')
        self.url_open('/')
        portal_partner = self.env.ref('base.demo_user0').partner_id
        self.assertEqual(self.events().partner_id, portal_partner)

    def test_login_attaches_anonymous_history(self):
        self.url_open('/')
        self.url_open('/contactus')
        anonymous_views = self.events()
        self.assertFalse(anonymous_views.partner_id)
        login_page = self.url_open('/web/login').text
        csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        response = self.url_open('/web/login', data={'login': 'portal', 'password': 'portal', 'csrf_token': csrf_token})
        self.assertEqual(response.status_code, 200)
        portal_partner = self.env.ref('base.demo_user0').partner_id
        anonymous_views.invalidate_recordset()
        self.assertEqual(anonymous_views.partner_id, portal_partner)
        self.assertEqual(set(anonymous_views.mapped('url')), {f'{self.base_url()}/', f'{self.base_url()}/contactus'})

    def test_mail_click_identifies_the_browser(self):
        customer = self.env['res.partner'].create({'name': 'Carl', 'email': 'carl@customer.example.com'})
        mailing = self.env['mailing.mailing'].create({'name': 'News', 'subject': 'News',
                                                      'mailing_model_id': self.env['ir.model']._get_id('res.partner')})
        trace = self.env['mailing.trace'].create({'model': 'res.partner', 'res_id': customer.id, 'email': customer.email,
                                                  'mass_mailing_id': mailing.id, 'trace_status': 'sent'})
        link = self.env['link.tracker'].create({'url': f'{self.base_url()}/contactus', 'mass_mailing_id': mailing.id})
        self.url_open('/')
        # As the mail's link is sent: signed over its trace (test_claimed_identity renders a real mailing's).
        response = self.url_open(f'/r/{link.code}/m/{trace.id}?sig={trace._mautomate_link_signature()}', allow_redirects=False)
        self.assertEqual(response.status_code, 301)
        self.url_open('/contactus')
        events = self.events([('partner_id', '=', customer.id)])
        self.assertEqual(sorted(events.mapped('event_type')), ['email_click', 'email_open', 'email_sent', 'page_view', 'page_view'])
        self.assertEqual(events.filtered(lambda event: event.event_type == 'email_click').url, f'{self.base_url()}/contactus')

    def test_a_failing_page_view_insert_never_breaks_the_page(self):
        """ A database error in the tracking INSERT (here a NOT NULL violation) is rolled back to its
        savepoint: the page is served and its transaction commits. """
        original_row = MautomateEvent._ingest_row

        def broken_row(event_model, vals):
            return original_row(event_model, {**vals, 'event_type': None})

        with patch.object(MautomateEvent, '_ingest_row', broken_row), self.assertLogs('odoo.sql_db', 'ERROR'), \
                self.assertLogs('odoo.addons.mautomate_marketing.models.ir_http', 'ERROR'):
            response = self.url_open('/contactus')
        self.assertEqual(response.status_code, 200)
        self.assertIn('contactus_form', response.text)
        self.assertFalse(self.events())
        self.url_open('/contactus')
        self.assertEqual(len(self.events()), 1, "the same page is tracked once the INSERT works")
