from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import hmac

from odoo.addons.mautomate_marketing.models.website_visitor import WebsiteVisitor

from .common import MautomateHttpCase

VISITOR_LOGGER = 'odoo.addons.mautomate_marketing.models.website_visitor'


@tagged('post_install', '-at_install')
class TestWebsiteForms(MautomateHttpCase):

    def contact(self, email):
        return self.env['res.partner'].search([('email_normalized', '=', email)])

    def post_contact_us(self, **values):
        """ The stock Contact us form: a mail.mail to the company, its recipient signed by the page. """
        company_email = self.env.company.email
        return self.url_open('/website/form/mail.mail', data={
            'email_to': company_email, 'website_form_signature': hmac(self.env(su=True), 'website_form_signature', company_email),
            'subject': 'Offert', 'description': 'Hej!', **values})

    def test_stock_contact_us_form_identifies_the_typed_email(self):
        """ The Contact us form of a fresh website creates a mail.mail whose email_from Odoo replaces
        with the company's: the visitor is the e-mail typed, never the company. """
        company_partner = self.env.company.partner_id
        self.url_open('/')
        self.url_open('/contactus')
        browser_id = self.opener.cookies['mautomate_vid']
        response = self.post_contact_us(name='Maja Mailer', phone='+46 70 123 45 67',
                                        email_from='maja@mailer.example.com', company='Mailer AB')
        self.assertEqual(response.status_code, 200, response.text)
        mail = self.env['mail.mail'].browse(response.json()['id'])
        self.assertIn(self.env.company.email, mail.email_from, "Odoo sends it from the company")

        maja = self.contact('maja@mailer.example.com')
        self.assertRecordValues(maja, [{'name': 'Maja Mailer', 'phone': '+46 70 123 45 67', 'company_name': 'Mailer AB'}])
        history = self.events([('anonymous_id', '=', browser_id)])
        self.assertEqual(history.mapped('event_type'), ['form_submit', 'page_view', 'page_view'])
        self.assertEqual(history.partner_id, maja)
        self.assertRecordValues(history[0], [{'res_model': 'mail.mail', 'res_id': mail.id}])
        self.assertFalse(self.events([('partner_id', '=', company_partner.id)]))

        self.url_open('/')
        # A typed e-mail is a claim: the browser's later pages are hers only once it is proven (a login, a signed link).
        self.assertFalse(self.events([('id', '>', history[0].id)]).partner_id)

    def test_typing_the_company_email_identifies_nobody(self):
        self.url_open('/')
        self.assertEqual(self.post_contact_us(name='Prankster', email_from=self.env.company.email).status_code, 200)
        self.assertEqual(self.events().mapped('event_type'), ['form_submit', 'page_view'])
        self.assertFalse(self.events().partner_id)

    def test_lead_form_links_the_lead_to_the_contact_of_the_typed_email(self):
        existing = self.env['res.partner'].create({
            'name': 'Known Customer', 'email': 'known@customer.example.com', 'phone': '+32 111', 'city': 'Malmö'})
        self.url_open('/')
        response = self.url_open('/website/form/crm.lead', data={
            'contact_name': 'Kim', 'email_from': 'KNOWN@customer.example.com', 'phone': '+32 999', 'name': 'A quote please'})
        self.assertEqual(response.status_code, 200, response.text)
        lead = self.env['crm.lead'].browse(response.json()['id'])
        self.assertRecordValues(lead, [{'partner_id': existing.id, 'contact_name': 'Kim', 'phone': '+32 999',
                                        'email_from': 'KNOWN@customer.example.com'}])
        self.assertRecordValues(existing, [{'name': 'Known Customer', 'phone': '+32 111', 'city': 'Malmö',
                                            'email': 'known@customer.example.com'}])
        self.assertIn(lead, existing.opportunity_ids | self.env['crm.lead'].search([('partner_id', '=', existing.id)]))
        history = self.events([('partner_id', '=', existing.id)])
        self.assertEqual(history.mapped('event_type'), ['form_submit', 'page_view'])
        self.assertRecordValues(history[0], [{'lead_id': lead.id, 'res_model': 'crm.lead', 'res_id': lead.id}])
        self.assertEqual(self.events(lead.action_mautomate_timeline()['domain']), history)

    def test_lead_form_of_a_new_person_creates_and_links_the_contact(self):
        self.url_open('/')
        response = self.url_open('/website/form/crm.lead', data={
            'contact_name': 'Nora New', 'email_from': 'nora@new.example.com', 'partner_name': 'New Oy', 'name': 'Hello'})
        lead = self.env['crm.lead'].browse(response.json()['id'])
        nora = self.contact('nora@new.example.com')
        self.assertRecordValues(nora, [{'name': 'Nora New', 'company_name': 'New Oy'}])
        self.assertEqual(lead.partner_id, nora)
        self.assertEqual(lead.partner_name, 'New Oy')
        history = self.events([('partner_id', '=', nora.id)])
        self.assertEqual(history.mapped('event_type'), ['form_submit', 'page_view'])
        self.assertEqual(self.events(lead.action_mautomate_timeline()['domain']), history)

    def test_newsletter_block_identifies_the_subscriber(self):
        mailing_list = self.env['mailing.list'].create({'name': 'Nyhetsbrev', 'is_public': True})
        self.url_open('/')
        result = self.make_jsonrpc_request('/website_mass_mailing/subscribe', {
            'list_id': mailing_list.id, 'value': 'Sune@Subscriber.example.com', 'subscription_type': 'email'})
        self.assertEqual(result['toast_type'], 'success')
        sune = self.contact('sune@subscriber.example.com')
        self.assertEqual(len(sune), 1)
        history = self.events([('partner_id', '=', sune.id)])
        self.assertEqual(history.mapped('event_type'), ['form_submit', 'page_view'])
        self.assertEqual(history[0].res_model, 'mailing.contact')

    def test_a_form_naming_no_contact_is_not_the_browsers_earlier_one(self):
        """ A browser known as Sune signs up the company's address, then one that is not an address: neither
        submit is Sune's. """
        mailing_list = self.env['mailing.list'].create({'name': 'Nyhetsbrev', 'is_public': True})
        self.url_open('/')
        for value in ('sune@subscriber.example.com', self.env.company.email, 'not-an-email'):
            result = self.make_jsonrpc_request('/website_mass_mailing/subscribe', {
                'list_id': mailing_list.id, 'value': value, 'subscription_type': 'email'})
            self.assertEqual(result['toast_type'], 'success')
        sune = self.contact('sune@subscriber.example.com')
        submits = self.events([('event_type', '=', 'form_submit')]).sorted('id')
        self.assertEqual(submits.mapped('partner_id'), sune)
        self.assertEqual([bool(submit.partner_id) for submit in submits], [True, False, False])

    def test_newsletter_block_of_a_deleted_list(self):
        mailing_list = self.env['mailing.list'].create({'name': 'Gammalt nyhetsbrev', 'is_public': True})
        list_id = mailing_list.id
        mailing_list.unlink()
        for wrong in (list_id, 'abc'):
            result = self.make_jsonrpc_request('/website_mass_mailing/subscribe', {
                'list_id': wrong, 'value': 'late@subscriber.example.com', 'subscription_type': 'email'})
            self.assertEqual(result, {'toast_type': 'danger', 'toast_content': 'This newsletter no longer exists.'})
        self.assertFalse(self.env['mailing.contact'].search([('email', '=', 'late@subscriber.example.com')]))

    def test_other_form_builder_models_identify_by_their_email_field(self):
        self.env['ir.model']._get('res.partner').website_form_access = True
        self.env['ir.model.fields'].formbuilder_whitelist('res.partner', ['name', 'email'])
        self.url_open('/')
        response = self.url_open('/website/form/res.partner', data={'name': 'Pia Partner', 'email': 'pia@partner.example.com'})
        self.assertEqual(response.status_code, 200, response.text)
        pia = self.env['res.partner'].browse(response.json()['id'])
        self.assertEqual(self.contact('pia@partner.example.com'), pia, "the form's own contact, not a second one")
        self.assertEqual(self.events().partner_id, pia)

    def test_tracking_errors_never_fail_the_form(self):
        self.url_open('/')

        def broken(*args, **kwargs):
            raise ValueError("tracking is broken")

        with patch.object(WebsiteVisitor, '_mautomate_form_contact', broken), \
                patch.object(WebsiteVisitor, '_mautomate_log_form_submit', broken), \
                self.assertLogs(VISITOR_LOGGER, 'ERROR') as logs:
            response = self.url_open('/website/form/crm.lead', data={
                'contact_name': 'Bo', 'email_from': 'bo@broken.example.com', 'name': 'Still works'})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(len(logs.records), 2)
        lead = self.env['crm.lead'].browse(response.json()['id'])
        self.assertEqual(lead.name, 'Still works')
        self.assertFalse(self.events([('event_type', '=', 'form_submit')]))
        # The same form without the failure is tracked: the patch above is what stopped it.
        self.url_open('/website/form/crm.lead', data={'contact_name': 'Bo', 'email_from': 'bo@broken.example.com', 'name': 'Again'})
        self.assertEqual(len(self.events([('event_type', '=', 'form_submit')])), 1)

    def test_logged_in_user_keeps_website_crm_rules(self):
        self.authenticate('portal', 'portal')
        portal_partner = self.env.ref('base.demo_user0').partner_id
        self.url_open('/')
        csrf_token = self.url_open('/contactus').text.split('csrf_token: "', 1)[1].split('"', 1)[0]
        response = self.url_open('/website/form/crm.lead', data={
            'contact_name': 'Someone Else', 'email_from': 'else@example.com', 'name': 'For a colleague', 'csrf_token': csrf_token})
        lead = self.env['crm.lead'].browse(response.json()['id'])
        self.assertFalse(lead.partner_id, "an edited e-mail is not linked to the logged-in user (website_crm)")
        self.assertEqual(self.events([('event_type', '=', 'form_submit')]).partner_id, portal_partner)
        self.assertFalse(self.contact('else@example.com'))
