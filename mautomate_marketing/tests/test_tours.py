import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo.tests import tagged

from ..controllers.identify import identify_signature
from .common import MautomateHttpCase

EXTERNAL_PAGE = """<!DOCTYPE html>
<html><head><title>Acme pricing</title>
<script>
  %(before)s
  window.mautomateTracker = {endpoint: "%(odoo)s/mautomate/track", requireConsent: %(consent)s};
</script>
<script src="%(odoo)s/mautomate_marketing/static/src/tracker/tracker.js"></script>
</head><body>
  <h1>Pricing</h1>
  <button id="cta" data-mautomate-cta="Book a demo">Book a demo</button>
  <a id="brochure" href="/files/brochure.pdf" onclick="event.preventDefault()">Brochure</a>
</body></html>
"""


IDENTIFY_VID = '1d' * 16


class ExternalSite:
    """ A site that is not on Odoo, served on another port of this machine. """

    def __init__(self, odoo_url):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                mode = self.path.partition('?mode=')[2]
                page = EXTERNAL_PAGE % {
                    'odoo': odoo_url,
                    'consent': 'true' if mode == 'ask' else 'false',
                    'before': {
                        'dnt': "Object.defineProperty(navigator, 'doNotTrack', {value: '1'});",
                        # The browser id the site's server read from the cookie to sign identify().
                        'identify': f'document.cookie = "mautomate_vid={IDENTIFY_VID}; path=/";',
                    }.get(mode, ''),
                }
                self.send_response(200)
                self.send_header('Content-Type', 'text/html; charset=utf-8')
                self.end_headers()
                self.wfile.write(page.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_port}'
        self.thread = threading.Thread(target=site.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@tagged('post_install', '-at_install')
class TestStockContactUsTour(MautomateHttpCase):

    def test_stock_contact_us_form_identifies_the_visitor(self):
        """ The Contact us page of a fresh website, as Odoo ships it: the form sends an e-mail. """
        self.start_tour('/', 'mautomate_stock_contact_us')
        maja = self.env['res.partner'].search([('email_normalized', '=', 'maja@mailer.example.com')])
        self.assertRecordValues(maja, [{'name': 'Maja Mailer', 'company_name': 'Mailer AB'}])
        history = self.events([('partner_id', '=', maja.id)]).sorted('id')
        self.assertEqual(history.mapped('event_type'), ['page_view', 'page_view', 'form_submit'])
        self.assertEqual(history[2].res_model, 'mail.mail')
        self.assertEqual([view.url.replace(self.base_url(), '') for view in history], ['/', '/contactus', '/contactus'])
        # A typed e-mail is a claim: the browser's pages after it stay anonymous until a proof.
        thanks = self.events([('anonymous_id', '=', history[0].anonymous_id), ('id', '>', history[2].id)])
        self.assertEqual([(view.url.replace(self.base_url(), ''), view.partner_id) for view in thanks],
                         [('/contactus-thank-you', self.env['res.partner'])])
        self.assertFalse(self.events([('partner_id', '=', self.env.company.partner_id.id)]))


@tagged('post_install', '-at_install')
class TestTours(MautomateHttpCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # What a marketer does in the editor: the Contact us form creates an opportunity.
        contactus = cls.env.ref('website.contactus').with_context(website_id=cls.env['website'].get_current_website().id)
        arch = contactus.arch
        for old, new in [('data-model_name="mail.mail"', 'data-model_name="crm.lead"'),
                         ('name="name" required=""', 'name="contact_name" required=""'),
                         ('name="company"', 'name="partner_name"'),
                         ('name="subject"', 'name="name"')]:
            assert old in arch, old
            arch = arch.replace(old, new)
        contactus.arch = arch

    def test_anonymous_history_on_the_lead_after_contact_us(self):
        self.start_tour('/', 'mautomate_anonymous_visitor_contact_us')
        lead = self.env['crm.lead'].search([('email_from', '=', 'vera.visitor@example.com')])
        self.assertEqual(len(lead), 1)
        vera = self.env['res.partner'].search([('email_normalized', '=', 'vera.visitor@example.com')])
        self.assertEqual(len(vera), 1, "a new contact is created for a new person")
        self.assertEqual(lead.partner_id, vera, "the lead's customer is that contact")
        self.assertIn(lead, vera.opportunity_ids)
        timeline = self.events(lead.action_mautomate_timeline()['domain'])
        form_submit = timeline.filtered(lambda event: event.event_type == 'form_submit')
        self.assertRecordValues(form_submit, [{'lead_id': lead.id, 'partner_id': vera.id, 'res_model': 'crm.lead'}])
        views_before = timeline.filtered(lambda event: event.event_type == 'page_view' and event.id < form_submit.id).sorted('id')
        self.assertEqual([view.url.replace(self.base_url(), '') for view in views_before], ['/', '/contactus', '/', '/contactus'])
        self.assertEqual(views_before.partner_id, vera, "the anonymous history now belongs to the contact")
        self.assertEqual(len(set(views_before.mapped('anonymous_id'))), 1, "one browser, one durable id")
        self.assertTrue(lead.visitor_ids)

        self.start_tour(f'/odoo/action-crm.crm_lead_all_leads/{lead.id}', 'mautomate_lead_timeline', login='admin')

    def track_external_page(self, mode, code, site=None):
        if not site:
            site = ExternalSite(self.base_url())
            self.addCleanup(site.stop)
        # The tracker loads in the page's head: the test clicks once the body is parsed too.
        self.browser_js(f'{site.url}/pricing?mode={mode}', code,
                        ready="window.mautomateTracker && window.mautomateTracker.loaded && document.readyState !== 'loading'")

    def test_tracker_on_a_site_not_on_odoo(self):
        self.track_external_page('plain', """
            document.querySelector('#cta').click();
            document.querySelector('#brochure').click();
            window.mautomateTracker.flush().then(() => console.log('test successful'));
        """)
        events = self.events([('source', '=', 'tracker')])
        self.assertEqual(sorted(events.mapped('event_type')), ['cta_click', 'download', 'page_view'])
        self.assertEqual(len(set(events.mapped('anonymous_id'))), 1)
        by_type = {event.event_type: event for event in events}
        self.assertRegex(by_type['page_view'].url, r'^http://127\.0\.0\.1:\d+/pricing\?mode=plain$')
        self.assertEqual(by_type['page_view'].name, 'Acme pricing')
        self.assertEqual(by_type['cta_click'].name, 'Book a demo')
        self.assertEqual(by_type['download'].name, 'brochure.pdf')

    def test_identify_on_a_site_not_on_odoo(self):
        """ The other site's page learns that the database accepted its identify() (a cross-site answer it may read). """
        site = ExternalSite(self.base_url())
        self.addCleanup(site.stop)
        self.env['ir.config_parameter'].set_param('mautomate_marketing.identify_origins', site.url)
        secret = self.env['res.config.settings']._mautomate_get_identify_secret()
        timestamp = int(time.time())
        signature = identify_signature(secret, 'ines@shop.example.com', IDENTIFY_VID, timestamp)
        self.track_external_page('identify', f"""
            window.mautomateTracker.identify('Ines@Shop.example.com', '{signature}', {timestamp}).then((accepted) => {{
                if (!accepted) {{
                    console.error('identify() was accepted, yet the page was told it was not');
                }}
                return window.mautomateTracker.identify('ines@shop.example.com', 'forged', {timestamp});
            }}).then((accepted) => {{
                if (accepted) {{
                    console.error('a forged identify() was reported accepted');
                }}
                console.log('test successful');
            }});
        """, site=site)
        ines = self.env['res.partner'].search([('email_normalized', '=', 'ines@shop.example.com')])
        self.assertEqual(self.events([('source', '=', 'tracker')]).partner_id, ines)

    def test_tracker_waits_for_consent(self):
        self.track_external_page('ask', """
            document.querySelector('#cta').click();
            window.mautomateTracker.flush().then(() => {
                if (document.cookie.includes('mautomate_vid')) {
                    console.error('a cookie was set before consent');
                }
                window.mautomateTracker.consent(true);
                return window.mautomateTracker.flush();
            }).then(() => {
                if (!document.cookie.includes('mautomate_vid')) {
                    console.error('no Browser ID cookie after consent');
                }
                console.log('test successful');
            });
        """)
        self.assertEqual(self.events([('source', '=', 'tracker')]).mapped('event_type'), ['page_view'])

    def test_tracker_honours_do_not_track(self):
        script = """
            window.mautomateTracker.consent(true);
            document.querySelector('#cta').click();
            window.mautomateTracker.flush().then(() => console.log('test successful'));
        """
        self.track_external_page('dnt', script)
        self.assertFalse(self.events([('source', '=', 'tracker')]))
        # The same page and clicks without Do-Not-Track are tracked.
        self.track_external_page('plain', script)
        self.assertEqual(sorted(self.events([('source', '=', 'tracker')]).mapped('event_type')), ['cta_click', 'page_view'])
