import re
from datetime import timedelta

from freezegun import freeze_time

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MautomateHttpCase
from .test_flows import FlowCase


class OptinMixin:

    def setup_optin_form(self):
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        self.ebook.double_optin = True
        self.email_question = self.ebook.question_ids.filtered(lambda question: question._is_email())

    def submit_optin(self, email):
        partner, _lead, _event = self.ebook._submit({self.email_question: email}, {'consent': True, 'ip': '192.0.2.10'})
        return partner, self.env['mautomate.consent'].search([('partner_id', '=', partner.id)], limit=1)

    def confirmation_mail(self, consent):
        return self.env['mail.mail'].search([('model', '=', 'mautomate.consent'), ('res_id', '=', consent.id)])


@tagged('post_install', '-at_install')
class TestDoubleOptinHold(OptinMixin, FlowCase):
    """ With double opt-in, marketing mail (flows and mass mailings) waits for the confirmation link. """

    def setUp(self):
        super().setUp()
        self.setup_optin_form()

    def test_confirmation_mail_and_token(self):
        partner, consent = self.submit_optin('Opt.In@Example.com')
        self.assertRecordValues(consent, [{'state': 'pending', 'email': 'opt.in@example.com', 'ip_address': '192.0.2.10'}])
        mail = self.confirmation_mail(consent)
        self.assertEqual(len(mail), 1)
        self.assertEqual(mail.email_to, 'opt.in@example.com')
        self.assertIn(f'/mautomate/consent/confirm/{consent._confirm_token()}', mail.body_html)
        Consent = self.env['mautomate.consent']
        self.assertEqual(Consent._from_confirm_token(consent._confirm_token()), consent)
        for bad in ('', 'x', f'{consent.id}-0000', f'{consent.id + 1}-{consent._confirm_token().partition("-")[2]}'):
            self.assertFalse(Consent._from_confirm_token(bad), bad)
        # A second double opt-in form of a confirmed address asks no second confirmation.
        consent._confirm('192.0.2.11')
        _partner, again = self.submit_optin('opt.in@example.com')
        self.assertNotEqual(again, consent)
        self.assertEqual(again.state, 'confirmed')
        self.assertFalse(self.confirmation_mail(again))
        self.assertEqual(partner.id, again.partner_id.id)

    def test_flow_mail_held_until_confirmation(self):
        partner, consent = self.submit_optin('held@example.com')
        flow = self.make_flow()
        mail1 = self.step(flow, 'mail1')
        flow.action_start()
        flow.action_enroll([partner.id, self.bob.id])
        self.run_engine()
        held = self.Trace.search([('step_id', '=', mail1.id), ('participant_id.partner_id', '=', partner.id)])
        self.assertRecordValues(held, [{'state': 'scheduled', 'defer_reason': 'unconfirmed', 'mail_mail_id': False}])
        self.assertEqual(held.scheduled_at, consent.create_date + timedelta(days=7), "held to the end of the link's validity")
        bob_trace = self.Trace.search([('step_id', '=', mail1.id), ('participant_id.partner_id', '=', self.bob.id)])
        self.assertEqual(bob_trace.state, 'done', "other contacts are not held")

        self.run_engine(self.start + timedelta(days=2))
        self.assertEqual(held.state, 'scheduled', "still held two days later")
        consent._confirm('192.0.2.20')
        self.assertRecordValues(consent, [{'state': 'confirmed', 'confirm_ip_address': '192.0.2.20'}])
        self.assertTrue(consent.confirm_date)
        self.run_engine(self.start + timedelta(days=2))
        self.assertEqual(held.state, 'done', "released by the confirmation")
        self.assertIn('held@example.com', held.mail_mail_id.email_to)

    def test_flow_mail_skipped_when_never_confirmed(self):
        partner, _consent = self.submit_optin('never@example.com')
        flow = self.make_flow()
        mail1 = self.step(flow, 'mail1')
        flow.action_start()
        flow.action_enroll([partner.id])
        self.run_engine()
        self.run_engine(self.start + timedelta(days=8))
        trace = self.Trace.search([('step_id', '=', mail1.id)])
        self.assertRecordValues(trace, [{'state': 'skipped', 'skip_reason': 'unconfirmed', 'mail_mail_id': False}])

    def test_mass_mailings_held_until_confirmation(self):
        partner, consent = self.submit_optin('list@example.com')
        mailing_list = self.env['mailing.list'].create({'name': 'Opt-in news', 'contact_ids': [
            (0, 0, {'name': 'Listed', 'email': 'list@example.com'}), (0, 0, {'name': 'Other', 'email': 'other@example.com'})]})
        to_list = self.env['mailing.mailing'].create({
            'subject': 'List news', 'body_html': '<p>News</p>', 'contact_list_ids': [(4, mailing_list.id)],
            'mailing_model_id': self.env['ir.model']._get_id('mailing.list'),
        })
        to_contacts = self.env['mailing.mailing'].create({
            'subject': 'Contact news', 'body_html': '<p>News</p>',
            'mailing_model_id': self.env['ir.model']._get_id('res.partner'),
            'mailing_domain': repr([('id', 'in', [partner.id, self.bob.id])]),
        })
        with freeze_time(self.start + timedelta(hours=1)):  # sent after the consent was given (a database date)
            (to_list | to_contacts).action_send_mail()
        self.assertEqual(sorted(to_list.mailing_trace_ids.mapped('email')), ['other@example.com'],
                         "the unconfirmed address is left out, without a trace")
        self.assertEqual(to_contacts.mailing_trace_ids.mapped('email'), ['bob@buyer.example.com'])
        sent_date = to_list.sent_date

        consent._confirm('192.0.2.30')
        self.assertEqual(sorted(to_list.mailing_trace_ids.mapped('email')), ['list@example.com', 'other@example.com'],
                         "the confirmation sends the held mailing")
        self.assertEqual(sorted(to_contacts.mailing_trace_ids.mapped('email')), ['bob@buyer.example.com', 'list@example.com'])
        self.assertEqual(to_list.sent_date, sent_date)
        self.assertEqual(len(to_contacts.mailing_trace_ids), 2, "nobody gets it twice")


@tagged('post_install', '-at_install')
class TestDoubleOptinPages(OptinMixin, MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.setup_optin_form()

    def test_confirmation_link(self):
        """ A mail scanner opens the link (GET): nothing is confirmed. The person presses the button (POST): confirmed. """
        _partner, consent = self.submit_optin('click@example.com')
        link = re.search(r'href="[^"]*(/mautomate/consent/confirm/[^"]+)"', self.confirmation_mail(consent).body_html).group(1)
        for _scan in range(2):
            response = self.url_open(link)
            self.assertEqual(response.status_code, 200)
            self.assertIn('click@example.com', response.text)
            self.assertNotIn('is confirmed', response.text)
            consent.invalidate_recordset()
            self.assertRecordValues(consent, [{'state': 'pending', 'confirm_date': False, 'confirm_ip_address': False}])
        form = re.search(r'<form[^>]* action="(/mautomate/consent/confirm/[^"]+)"[^>]*>.*?name="csrf_token" value="([^"]+)"',
                         response.text, re.DOTALL)
        self.assertEqual(form.group(1), link)
        self.assertIn('method="post"', form.group(0))
        with mute_logger('odoo.http'):
            self.assertEqual(self.url_open(link, data={'csrf_token': 'forged'}).status_code, 400, "a forged form confirms nothing")
        consent.invalidate_recordset()
        self.assertEqual(consent.state, 'pending')
        response = self.url_open(link, data={'csrf_token': form.group(2)})
        self.assertEqual(response.status_code, 200)
        self.assertIn('is confirmed', response.text)
        consent.invalidate_recordset()
        self.assertEqual(consent.state, 'confirmed')
        self.assertEqual(consent.confirm_ip_address, '127.0.0.1')
        self.assertIn('is confirmed', self.url_open(link).text, "a second click shows the thank-you again")

    @mute_logger('odoo.http')
    def test_bad_or_expired_link_is_not_found(self):
        _partner, consent = self.submit_optin('late@example.com')
        token = consent._confirm_token()
        for bad in ('nothing', f'{consent.id}-{"0" * 64}', f'{consent.id}x-{token.partition("-")[2]}'):
            response = self.url_open(f'/mautomate/consent/confirm/{bad}')
            self.assertEqual(response.status_code, 404, bad)
            self.assertNotIn('Traceback', response.text)
        self.env.cr.execute("UPDATE mautomate_consent SET create_date = create_date - interval '8 days' WHERE id = %s",
                            [consent.id])
        response = self.url_open(f'/mautomate/consent/confirm/{token}')
        self.assertEqual(response.status_code, 404, "the link expired")
        consent.invalidate_recordset()
        self.assertEqual(consent.state, 'pending')
