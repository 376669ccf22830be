import json
import re

from odoo.tests import HttpCase, tagged

from odoo.addons.mass_mailing.tests.common import MassMailCommon

from .common import MautomateHttpCase
from .test_cta import journey_cta
from .test_flows import FlowCase
from .test_forms import FORM_URL, FormMixin


class ClaimMixin(FormMixin):
    """ An anonymous visitor who types someone else's e-mail in the e-book form. """

    def setUp(self):
        super().setUp()
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        self.ebook.min_fill_seconds = 0
        self.victim = self.env['res.partner'].create({
            'name': 'Vera Victim', 'email': 'vera@victim.example.com', 'company_name': 'Victim AB',
            'function': 'CFO', 'city': 'Lund'})

    def open_form(self, url=FORM_URL):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, response.text)
        self.page = response.text
        return re.findall(r'data-name="([a-z_]+)"', response.text)

    def submit(self, url=FORM_URL, **answers):
        token, csrf = (re.search(rf'name="{name}" value="([^"]*)"', self.page).group(1)
                       for name in ('mautomate_token', 'csrf_token'))
        response = self.url_open(url, data={'mautomate_token': token, 'csrf_token': csrf, 'consent': '1', **answers},
                                 allow_redirects=False)
        self.assertEqual(response.status_code, 200, response.text)
        return response

    def claim(self, url=FORM_URL, **answers):
        """ Opens the form and sends it with the victim's e-mail. """
        self.open_form(url)
        return self.submit(url, email=self.victim.email, **answers)

    def browser_id(self):
        return self.opener.cookies.get('mautomate_vid')

    def proven_contact(self):
        return self.env['mautomate.proven.browser']._partner_of(self.browser_id())

    def last_page_view(self, path='/'):
        self.url_open(path)
        return self.events([('event_type', '=', 'page_view')])[:1]


@tagged('post_install', '-at_install')
class TestClaimedIdentity(ClaimMixin, MautomateHttpCase):

    def test_claimed_form_asks_what_this_browser_did_not_answer(self):
        """ (a) The next page of the form follows this browser's answers, not the victim's gaps. """
        self.url_open('/')
        self.assertEqual(self.open_form(), ['email', 'name', 'company_name', 'consent'])
        self.submit(email=self.victim.email, name='Mallory', company_name='Evil AB')
        # The victim has a function and a city on file: asking country and phone next would tell so.
        self.assertEqual(self.open_form(), ['email', 'function', 'city', 'consent'])
        for on_file in ('Vera', 'Victim AB', 'CFO', 'Lund', 'vera@victim'):
            self.assertNotIn(on_file, self.page)
        # The claim is logged on the victim, with the browser's earlier anonymous page; its later pages are not hers.
        submit = self.events([('event_type', '=', 'form_submit')])
        self.assertRecordValues(submit, [{'partner_id': self.victim.id, 'anonymous_id': self.browser_id()}])
        self.assertIn(self.victim, self.events([('event_type', '=', 'page_view')]).partner_id)
        self.assertFalse(self.last_page_view().partner_id, "a claimed browser's later beacons stay anonymous")
        self.assertFalse(self.proven_contact())

    def test_claimed_cta_follows_this_browsers_events(self):
        """ (b) The CTA line is picked by this browser's events only, not by the victim's stage. """
        cta = journey_cta(self.env)
        self.env['mautomate.event']._ingest([{'event_type': 'custom', 'source': 'api', 'name': 'Webinar attended',
                                              'partner_id': self.victim.id}])
        self.claim(name='Mallory')

        def offer():
            return self.make_jsonrpc_request(f'/mautomate/cta/{cta.id}', {'page_url': 'https://www.example.com/'})['label']

        self.assertEqual(offer(), 'Free e-book', "the victim's webinar is not this browser's")
        self.env['mautomate.event']._ingest([{'event_type': 'download', 'name': 'The e-book.pdf',
                                              'anonymous_id': self.browser_id()}])
        self.assertEqual(offer(), 'Join the webinar', "what this browser did still counts")
        self.assertFalse(self.events([('event_type', '=', 'cta_view')]).partner_id)

    def test_claimed_popup_follows_this_browsers_submits(self):
        """ (c) A pop-up is left out for the forms this browser sent, not for those the victim sent elsewhere. """
        popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')
        self.env['mautomate.event']._ingest([{'event_type': 'form_submit', 'partner_id': self.victim.id,
                                              'anonymous_id': self.new_browser_id(), 'res_model': 'mautomate.form',
                                              'res_id': self.ebook.id}])
        self.make_form([('res.partner', 'email', 'email', None), ('res.partner', 'name', 'text', None)],
                       slug='newsletter', min_fill_seconds=0)
        self.claim('/mautomate/form/newsletter', name='Mallory')

        def popups():
            response = self.url_open('/mautomate/popup?path=/', headers={'X-Disable-Tracking': '1'})
            return [offered['id'] for offered in json.loads(response.text)['popups']]

        self.assertIn(popup.id, popups(), "the victim's e-book submit is not this browser's")
        # Proven (the victim's signed mail link): the contact's submits count.
        mailing = self.env['mailing.mailing'].create({'name': 'News', 'subject': 'News',
                                                      'mailing_model_id': self.env['ir.model']._get_id('res.partner')})
        trace = self.env['mailing.trace'].create({'model': 'res.partner', 'res_id': self.victim.id, 'email': self.victim.email,
                                                  'mass_mailing_id': mailing.id, 'trace_status': 'sent'})
        link = self.env['link.tracker'].create({'url': f'{self.base_url()}/contactus', 'title': 'Contact us',
                                                'mass_mailing_id': mailing.id})
        self.url_open(f'/r/{link.code}/m/{trace.id}?sig={trace._mautomate_link_signature()}', allow_redirects=False)
        self.assertNotIn(popup.id, popups())

    def test_claim_keeps_the_open_leads_values(self):
        """ (e) The claim fills nothing the open lead has; the differing answers are an internal note on it. """
        lead = self.env['crm.lead'].create({'name': 'Vera: big deal', 'partner_id': self.victim.id, 'type': 'opportunity',
                                            'contact_name': 'Vera Victim', 'partner_name': 'Victim AB'})
        self.claim(name='Mallory', company_name='Evil AB')
        self.assertEqual(self.ebook._open_lead(self.victim), lead)
        self.assertRecordValues(lead, [{'contact_name': 'Vera Victim', 'partner_name': 'Victim AB',
                                        'email_from': 'vera@victim.example.com'}])
        self.assertRecordValues(self.victim, [{'name': 'Vera Victim', 'company_name': 'Victim AB'}])
        note = lead.message_ids.filtered(lambda message: 'Mallory' in message.body)
        self.assertEqual(len(note), 1)
        self.assertEqual(note.subtype_id, self.env.ref('mail.mt_note'))
        self.assertIn('Evil AB (Victim AB)', note.body)

    def test_claim_without_a_lead_notes_on_the_contact(self):
        self.make_form([('res.partner', 'email', 'email', None), ('res.partner', 'company_name', 'text', None)],
                       slug='no-lead', create_lead=False, min_fill_seconds=0)
        self.claim('/mautomate/form/no-lead', company_name='Evil AB')
        self.assertEqual(self.victim.company_name, 'Victim AB')
        note = self.victim.message_ids.filtered(lambda message: 'Evil AB (Victim AB)' in message.body)
        self.assertEqual(note.subtype_id, self.env.ref('mail.mt_note'))

    def test_login_proves_the_browser_and_updates_own_values(self):
        """ (f) A portal user logged in is proven: the form follows their contact and updates their own values. """
        portal = self.env.ref('base.demo_user0').partner_id
        portal.write({'email': 'portal@example.com', 'company_name': 'Old AB', 'function': 'Dev', 'city': False})
        lead = self.env['crm.lead'].create({'name': 'Portal deal', 'partner_id': portal.id, 'partner_name': 'Old AB'})
        self.ebook.question_ids.filtered(lambda question: question.field_name == 'company_name').always_ask = True
        self.url_open('/')
        login_page = self.url_open('/web/login').text
        csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        self.url_open('/web/login', data={'login': 'portal', 'password': 'portal', 'csrf_token': csrf_token})
        self.assertEqual(self.open_form(), ['email', 'company_name', 'city', 'consent'])
        self.assertIn('value="Old AB"', self.page, "their own values, shown back to them")
        self.submit(email='portal@example.com', company_name='New AB', city='Lund')
        self.assertRecordValues(portal, [{'company_name': 'New AB', 'city': 'Lund'}])
        self.assertRecordValues(lead, [{'partner_name': 'New AB', 'city': 'Lund'}])
        # Logged out, the browser is still theirs: the login proved it.
        self.assertEqual(self.proven_contact(), portal)
        self.url_open('/web/session/logout')
        self.assertEqual(self.last_page_view().partner_id, portal)

    def test_confirmed_optin_proves_the_browser(self):
        """ The double opt-in link reached the address's inbox: the browser that confirms is the contact's. """
        self.ebook.double_optin = True
        self.claim(name='Mallory')
        self.assertFalse(self.proven_contact(), "sending the form proves nothing")
        consent = self.env['mautomate.consent'].search([('partner_id', '=', self.victim.id)])
        link = f'/mautomate/consent/confirm/{consent._confirm_token()}'
        page = self.url_open(link)
        self.assertFalse(self.proven_contact(), "opening the link (a mail scanner) proves nothing")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        self.assertEqual(self.url_open(link, data={'csrf_token': csrf}).status_code, 200)
        self.assertEqual(self.proven_contact(), self.victim)
        self.assertEqual(self.last_page_view().partner_id, self.victim)

    def test_own_email_gives_the_history_and_follows_this_browser(self):
        """ The legit visitor: their own e-mail gives them the browser's history; the form goes on from their answers. """
        self.url_open('/contactus')
        self.assertEqual(self.open_form(), ['email', 'name', 'company_name', 'consent'])
        self.submit(email='newbie@example.com', name='Nina Newbie', company_name='Newbie AB')
        nina = self.env['res.partner'].search([('email_normalized', '=', 'newbie@example.com')])
        self.assertEqual(set(self.events([('event_type', '=', 'page_view')]).mapped('partner_id')), {nina})
        self.assertEqual(self.open_form(), ['email', 'function', 'city', 'consent'])
        self.submit(email='newbie@example.com', function='Buyer', city='Umeå')
        self.assertEqual(self.open_form(), ['email', 'country_id', 'phone', 'consent'])
        # The page views between the two submits joined her at the second.
        self.assertEqual(self.events([('event_type', '=', 'page_view')])[1:].partner_id, nina)


@tagged('post_install', '-at_install')
class TestSignedMailLinks(ClaimMixin, MassMailCommon, HttpCase):
    """ (d) /r/<code>/m/<trace id> binds the browser only with the signature its mail was sent with. """
    readonly_enabled = False

    def setUp(self):
        super().setUp()
        self.opener.headers['User-Agent'] = MautomateHttpCase.BROWSER_USER_AGENT
        self.env.cr.execute("SELECT COALESCE(MAX(id), 0) FROM mautomate_event")
        self.events_before = self.env.cr.fetchone()[0]
        mailing = self.env['mailing.mailing'].create({
            'name': 'Spring offer', 'subject': 'Spring offer inside',
            'body_html': f'<p>Hello, <a href="{self.base_url()}/contactus">See the offer</a></p>',
            'mailing_model_id': self.env['ir.model']._get_id('res.partner'),
            'mailing_domain': [('id', '=', self.victim.id)],
        })
        with self.mock_mail_gateway(mail_unlink_sent=False):
            mailing.action_send_mail()
        [sent] = self._mails
        self.link = re.search(r'href="[^"]*(/r/[^"]+)"', sent['body']).group(1).replace('&amp;', '&')
        self.trace = mailing.mailing_trace_ids

    def events(self, domain=()):
        self.env.invalidate_all()
        return self.env['mautomate.event'].search([('id', '>', self.events_before), *domain])

    def click(self, path):
        response = self.url_open(path, allow_redirects=False)
        self.assertEqual(response.status_code, 301, "the click always reaches its page")
        self.assertTrue(response.headers['Location'].startswith(f'{self.base_url()}/contactus?'))

    def test_sent_link_is_signed_over_its_trace(self):
        self.assertRegex(self.link, rf'^/r/\w+/m/{self.trace.id}\?sig=\w+$')

    def test_unsigned_or_guessed_link_binds_nothing(self):
        self.url_open('/')
        unsigned = self.link.partition('?')[0]
        for path in (unsigned, f'{unsigned}?sig=0123abcd', f'{unsigned}?sig='):
            self.click(path)
        self.assertFalse(self.last_page_view().partner_id)
        self.assertFalse(self.events([('event_type', '=', 'page_view')]).partner_id, "nor joins its history")
        clicks = self.events([('event_type', '=', 'email_click')])
        self.assertEqual(clicks.partner_id, self.victim, "the mail's click is still counted for its recipient")
        self.assertFalse(any(clicks.mapped('anonymous_id')), "but names no browser")
        self.assertFalse(self.proven_contact())

    def test_signed_link_proves_the_browser(self):
        self.url_open('/')
        self.click(self.link)
        self.assertEqual(self.proven_contact(), self.victim)
        self.assertEqual(self.events([('event_type', '=', 'email_click')]).anonymous_id, self.browser_id())
        self.assertEqual(self.last_page_view('/contactus').partner_id, self.victim)
        self.assertEqual(self.events([('event_type', '=', 'page_view')]).partner_id, self.victim, "its history joined")
        # Proven, the form follows the contact's gaps.
        self.assertEqual(self.open_form(), ['email', 'country_id', 'phone', 'consent'])


@tagged('post_install', '-at_install')
class TestSignedFlowMailLinks(FlowCase):

    def test_flow_mail_links_are_signed_over_their_trace(self):
        """ A flow's mail is a mail of its step's mailing: its tracked links get the trace and its signature. """
        link = self.env['link.tracker'].create({'url': 'https://www.example.com/offer', 'title': 'Offer'})
        self.templates['mail1'].body_html = f'<p>Hello <a href="{link.short_url}">the offer</a></p>'
        flow = self.make_flow('form_submit')
        mail_step = self.step(flow, 'mail1')
        flow.action_start()
        self.ingest(event_type='form_submit', partner_id=self.bob.id)
        self.run_engine()
        mail = self.mails(mail_step)
        trace = mail.mailing_trace_ids
        self.assertEqual(len(trace), 1)
        body = mail._prepare_outgoing_body()
        self.assertIn(f'/r/{link.code}/m/{trace.id}?sig={trace._mautomate_link_signature()}"', body)
