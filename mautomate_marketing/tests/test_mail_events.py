from odoo.tests import tagged

from odoo.addons.mass_mailing.tests.common import MassMailCommon


@tagged('post_install', '-at_install')
class TestMailEvents(MassMailCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.customer = cls.env['res.partner'].create({'name': 'Carl Customer', 'email': 'carl@customer.example.com'})
        cls.lead = cls.env['crm.lead'].create({'name': 'Quote for Lea', 'contact_name': 'Lea', 'email_from': 'lea@lead.example.com'})

    def setUp(self):
        super().setUp()
        gateway = self.mock_mail_gateway(mail_unlink_sent=False)
        gateway.__enter__()
        self.addCleanup(gateway.__exit__, None, None, None)

    def send_mailing(self, records):
        mailing = self.env['mailing.mailing'].create({
            'name': 'Spring offer',
            'subject': 'Spring offer inside',
            'body_html': '<p>Hello, <a href="https://www.example.com/offer">See the offer</a></p>',
            'mailing_model_id': self.env['ir.model']._get_id(records._name),
            'mailing_domain': [('id', 'in', records.ids)],
        })
        mailing.action_send_mail()
        return mailing

    def events(self, mailing, event_type):
        return self.env['mautomate.event'].search([
            ('res_model', '=', 'mailing.mailing'), ('res_id', '=', mailing.id), ('event_type', '=', event_type)])

    def test_partner_mail_journey(self):
        mailing = self.send_mailing(self.customer)
        self.assertRecordValues(self.events(mailing, 'email_sent'), [{
            'partner_id': self.customer.id, 'source': 'email', 'name': 'Spring offer inside',
            'source_id': mailing.source_id.id, 'medium_id': mailing.medium_id.id, 'lead_id': False,
        }])
        self.gateway_mail_trace_open(mailing, self.customer)
        self.gateway_mail_trace_open(mailing, self.customer)
        self.assertEqual(self.events(mailing, 'email_open').partner_id, self.customer, "a second open is not a new event")
        self.assertEqual(len(self.events(mailing, 'email_open')), 1)

        link = self.env['link.tracker'].search([('mass_mailing_id', '=', mailing.id), ('url', '=', 'https://www.example.com/offer')])
        self.assertTrue(link, "the mailing's link is tracked")
        self.env['link.tracker.click'].sudo().add_click(link.code, ip='203.0.113.7', country_code='BE',
                                                       mailing_trace_id=mailing.mailing_trace_ids.id)
        self.assertRecordValues(self.events(mailing, 'email_click'), [{
            'partner_id': self.customer.id, 'url': 'https://www.example.com/offer'}])

        self.gateway_mail_trace_reply(mailing, self.customer)
        self.assertEqual(self.events(mailing, 'email_reply').partner_id, self.customer)
        timeline = self.env['mautomate.event'].search(self.customer.action_mautomate_timeline()['domain'])
        self.assertEqual(set(timeline.mapped('event_type')), {'email_sent', 'email_open', 'email_click', 'email_reply'})

    def test_lead_mail_bounce(self):
        mailing = self.send_mailing(self.lead)
        sent = self.events(mailing, 'email_sent')
        self.assertRecordValues(sent, [{'lead_id': self.lead.id, 'partner_id': False}])
        self.gateway_mail_trace_bounce(mailing, self.lead)
        bounce = self.events(mailing, 'email_bounce')
        self.assertRecordValues(bounce, [{'lead_id': self.lead.id}])
        lead_timeline = self.env['mautomate.event'].search(self.lead.action_mautomate_timeline()['domain'])
        self.assertEqual(lead_timeline, sent | bounce)

    def test_mailing_list_contact_matched_by_email(self):
        contact = self.env['mailing.contact'].create({'name': 'Carl', 'email': 'Carl <CARL@customer.example.com>'})
        mailing = self.send_mailing(contact)
        self.assertEqual(self.events(mailing, 'email_sent').partner_id, self.customer)

    def test_blacklisted_recipient_is_not_tracked(self):
        self.env['mail.blacklist']._add(self.customer.email)
        trace = self.env['mailing.trace'].create({
            'model': 'res.partner', 'res_id': self.customer.id, 'email': self.customer.email, 'trace_status': 'sent'})
        trace.set_opened()
        self.assertFalse(self.env['mautomate.event'].search([('partner_id', '=', self.customer.id)]))

    def test_link_click_outside_mailings(self):
        link = self.env['link.tracker'].create({'url': 'https://www.example.com/landing', 'title': 'Landing'})
        self.env['link.tracker.click'].sudo().add_click(link.code, ip='10.0.0.1', country_code='BE')
        event = self.env['mautomate.event'].search([('event_type', '=', 'link_click')])
        self.assertRecordValues(event, [{'url': 'https://www.example.com/landing', 'name': 'Landing', 'source': 'website'}])
