import re
from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import new_test_user, tagged

from .common import MautomateCase, MautomateHttpCase
from .test_flows import FlowCase
from .test_outgoing import WebhookMixin


def erase_as_manager(env, partners):
    manager = new_test_user(env, 'erasure_manager', groups='base.group_user,mautomate_marketing.group_mautomate_manager')
    partners.with_user(manager).action_mautomate_erase_tracking()
    env.invalidate_all()


@tagged('post_install', '-at_install')
class TestErasureStopsFlows(WebhookMixin, FlowCase):

    def test_no_mail_or_webhook_goes_after_erasure(self):
        """ Ann is in a running flow: her first mail is queued (not yet sent by the mail queue), a second mail and a
        webhook are due tomorrow. A manager erases her: the queued mail is cancelled, the engine sends her nothing. """
        server, url = self.start_receiver()
        flow = self.make_flow(name='Nurture')
        mail1 = self.step(flow, 'mail1')
        mail2 = self.step(flow, 'mail2a', parents=[mail1], delay=1)
        hook = self.step(flow, 'hook', kind='webhook', webhook_url=url, parents=[mail1], delay=1)
        flow.action_start()
        flow.action_enroll((self.partner | self.bob).ids)
        self.run_engine()
        queued = self.mails(mail1, self.partner)
        self.assertEqual(queued.state, 'outgoing', "the first mail waits in the mail queue")

        erase_as_manager(self.env, self.partner)
        self.run_flows(self.start + timedelta(days=2))

        self.assertEqual(queued.state, 'cancel', "the mail queue does not send it")
        self.assertEqual(queued.mailing_trace_ids.trace_status, 'cancel')
        participant = self.Participant.search([('flow_id', '=', flow.id), ('partner_id', '=', self.partner.id)])
        self.assertEqual(participant.state, 'stopped')
        pending = self.Trace.search([('participant_id', '=', participant.id), ('step_id', 'in', (mail2 | hook).ids)])
        self.assertEqual(pending.mapped(lambda trace: (trace.state, trace.skip_reason, trace.attempts)),
                         [('skipped', 'erased', 0)] * 2, "never run: no call was tried")
        self.assertFalse(self.mails(mail2, self.partner))
        self.assertFalse(self.env['mail.mail'].sudo().search(
            [('model', '=', 'res.partner'), ('res_id', '=', self.partner.id), ('state', '=', 'outgoing')]))
        self.assertFalse([body for _headers, body in server.received if b'ann@prospect' in body])
        self.assertEqual(len(server.received), 1, "the other participant's call is made")
        self.assertTrue(self.mails(mail2, self.bob), "the other participant goes on")

    def test_an_erased_contact_enters_no_flow(self):
        flow = self.make_flow(name='Tag only')
        self.step(flow, 'tag', kind='tags', tag_add_ids=[(6, 0, self.tag_vip.ids)])
        flow.action_start()
        erase_as_manager(self.env, self.partner)
        flow.action_enroll((self.partner | self.bob).ids)
        self.assertEqual(self.Participant.search([('flow_id', '=', flow.id)]).partner_id, self.bob,
                         "until it opts in again, no step acts on it")
        leads = self.env['crm.lead'].create([{'name': 'Erased lead', 'partner_id': self.partner.id},
                                             {'name': 'Lead without contact', 'email_from': 'nobody@example.com'}])
        lead_flow = self.make_flow(name='Lead flow', target='lead')
        self.step(lead_flow, 'tag', kind='tags', tag_add_ids=[(6, 0, self.tag_vip.ids)])
        lead_flow.action_start()
        lead_flow.action_enroll(leads.ids)
        self.assertEqual(self.Participant.search([('flow_id', '=', lead_flow.id)]).lead_id, leads[1])


@tagged('post_install', '-at_install')
class TestErasure(MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.env['res.partner'].create({'name': 'Other Person', 'email': 'other@example.com'})
        cls.Consent = cls.env['mautomate.consent']
        cls.form = cls.env.ref('mautomate_marketing.mautomate_form_demo_ebook')

    def consent(self, partner, **vals):
        return self.Consent.create({'partner_id': partner.id, 'email': partner.email_normalized, 'text': 'I agree',
                                    'ip_address': '203.0.113.9', 'state': 'confirmed', **vals})

    def test_consents_keep_their_proof_for_the_proof_period(self):
        self.env['ir.config_parameter'].set_param('mautomate_marketing.consent_proof_days', 30)
        consent = self.consent(self.partner)
        theirs = self.consent(self.other)
        erase_as_manager(self.env, self.partner)
        self.assertTrue(consent.erased_on, "marked as erased")
        self.assertEqual((consent.email, consent.ip_address, consent.text), ('ann@prospect.example.com', '203.0.113.9', 'I agree'),
                         "within the proof period it keeps its proof")
        self.assertFalse(self.Consent._confirmed_emails(['ann@prospect.example.com']), "it no longer counts")
        self.Consent._cron_anonymise_erased_consents()
        self.assertEqual(consent.email, 'ann@prospect.example.com')

        with freeze_time(fields.Datetime.now() + timedelta(days=31)):
            self.env.ref('mautomate_marketing.ir_cron_anonymise_erased_consents').method_direct_trigger()
        self.env.invalidate_all()
        self.assertEqual((consent.email, consent.ip_address, consent.text), (False, False, 'I agree'),
                         "past it: anonymised, the consent text and date stay")
        self.assertEqual(consent.create_date.date(), theirs.create_date.date())
        self.assertEqual((theirs.email, theirs.erased_on), ('other@example.com', False))

    def test_cron_anonymises_in_batches(self):
        self.env['ir.config_parameter'].set_param('mautomate_marketing.consent_proof_days', 1)
        consents = self.Consent
        for _i in range(5):
            consents |= self.consent(self.partner)
        erase_as_manager(self.env, self.partner)
        with freeze_time(fields.Datetime.now() + timedelta(days=2)):
            self.assertEqual(self.Consent._cron_anonymise_erased_consents(batch_size=2, max_batches=2), 4)
            self.env.invalidate_all()
            self.assertEqual(len(consents.filtered('email')), 1, "the rest is for the next run")
            self.assertEqual(self.Consent._cron_anonymise_erased_consents(batch_size=2), 1)

    def test_settings_keep_consent_proof_at_least_a_day(self):
        self.assertEqual(self.Consent._get_proof_days(), 1095, "three years unless Settings say otherwise")
        with self.assertRaisesRegex(ValidationError, "at least one day"), self.cr.savepoint():
            self.env['res.config.settings'].create({'mautomate_consent_proof_days': 0}).execute()
        self.env['res.config.settings'].create({'mautomate_consent_proof_days': 400}).execute()
        self.assertEqual(self.Consent._get_proof_days(), 400)

    def test_erased_pending_consent_cannot_be_confirmed(self):
        consent = self.consent(self.partner, state='pending')
        token = consent._confirm_token()
        erase_as_manager(self.env, self.partner)
        self.assertFalse(self.Consent._from_confirm_token(token), "its old link would opt the person in again")

    def test_lead_chatter_written_by_tracking_is_erased(self):
        """ A form answer that differs from the contact's goes in the lead's chatter; the salesperson adds a note. Erasure
        removes the first, keeps the second. """
        questions = self.form.question_ids
        answers = {question: {'email': 'ann@prospect.example.com', 'name': 'Ann Otherwise'}.get(question.field_name)
                   for question in questions if question.field_name in ('email', 'name')}
        _partner, lead, _event = self.form._submit(answers, {'ip': '203.0.113.9', 'consent': True})
        tracking = lead.message_ids.filtered(lambda message: 'Ann Otherwise' in (message.body or ''))
        self.assertTrue(tracking)
        salesman = new_test_user(self.env, 'erasure_salesman', groups='sales_team.group_sale_salesman_all_leads')
        own = lead.with_user(salesman).message_post(body="Called her: wants a demo (Ann Otherwise)",
                                                    message_type='comment', subtype_xmlid='mail.mt_note')
        erase_as_manager(self.env, self.partner)
        self.assertFalse(tracking.exists())
        self.assertTrue(own.exists(), "the salesperson's own note stays")
        self.assertTrue(lead.exists(), "the lead is sales' record")

    def test_visitors_and_history_are_erased(self):
        Visitor = self.env['website.visitor']
        linked = Visitor.create({'access_token': str(self.partner.id), 'partner_id': self.partner.id})
        anonymous = Visitor.create({'access_token': 'a' * 32})
        on_lead = Visitor.create({'access_token': 'b' * 32})
        lead = self.env['crm.lead'].create({'name': 'Ann lead', 'partner_id': self.partner.id, 'visitor_ids': [(4, on_lead.id)]})
        theirs = Visitor.create({'access_token': 'c' * 32, 'partner_id': self.other.id})
        browser, their_browser = self.new_browser_id(), self.new_browser_id()
        self.ingest(partner_id=self.partner.id, visitor_id=anonymous.id, anonymous_id=browser)
        # Anonymous history of her browser and of the visitor on her lead, never attached.
        left = self.ingest(anonymous_id=browser, occurred_at=fields.Datetime.now() - timedelta(days=1))
        left |= self.ingest(visitor_id=on_lead.id)
        kept = self.ingest(partner_id=self.other.id, visitor_id=theirs.id, anonymous_id=their_browser)
        self.env['mautomate.proven.browser']._prove(their_browser, self.other, 'login')
        self.env['mautomate.score.entry'].create({'partner_id': self.partner.id, 'points': 5})
        self.env['mautomate.score.entry'].create({'lead_id': lead.id, 'points': 5})
        # A browser proven as her by a login, with no event yet; a note tracking wrote on her, a colleague's note.
        proven = self.new_browser_id()
        self.env['mautomate.proven.browser']._prove(proven, self.partner, 'login')
        tracking_note = self.partner.message_post(body="Form: answers that differ", mautomate_tracking=True)
        colleague_note = self.partner.message_post(body="Met her at the fair")
        erase_as_manager(self.env, self.partner)
        self.assertFalse(self.env['mautomate.proven.browser'].search([('partner_id', '=', self.partner.id)]))
        self.assertFalse(self.ingest(anonymous_id=proven), "a browser proven as her is not tracked either")
        self.assertFalse(tracking_note.exists())
        self.assertTrue(colleague_note.exists())
        self.assertFalse((linked | anonymous | on_lead).exists())
        self.assertFalse(left.exists())
        self.assertTrue(theirs.exists() and kept.exists())
        self.assertFalse(self.env['mautomate.score.entry'].search(['|', ('partner_id', '=', self.partner.id), ('lead_id', '=', lead.id)]))
        self.assertFalse(self.env['mautomate.score.queue'].search([('partner_id', '=', self.partner.id), ('event_id', '!=', False)]))
        self.assertTrue(self.partner.mautomate_no_tracking and self.partner.mautomate_erased_on)
        # Her browser and her contact are not tracked again; another browser and contact are.
        self.assertFalse(self.ingest(anonymous_id=browser))
        self.assertFalse(self.ingest(partner_id=self.partner.id))
        self.assertEqual(self.ingest(anonymous_id=their_browser).partner_id, self.other)
        self.assertFalse(self.env['mautomate.erased.browser'].search([('browser_hash', '=', browser)]), "kept as a hash only")

    def test_erasure_costs_the_same_queries_for_many_events(self):
        many = self.env['res.partner'].create({'name': 'Many Events', 'email': 'many@example.com'})
        few = self.env['res.partner'].create({'name': 'Few Events', 'email': 'few@example.com'})
        for partner, count in ((many, 10000), (few, 10)):
            self.Event._ingest([{'event_type': 'page_view', 'partner_id': partner.id, 'anonymous_id': self.new_browser_id()}
                                for _i in range(count)])
        self.partner._mautomate_erase_tracking()  # caches warm
        queries = {}
        for partner in (few, many):
            self.env.flush_all()
            before = self.env.cr.sql_log_count
            partner._mautomate_erase_tracking()
            queries[partner] = self.env.cr.sql_log_count - before
        self.assertEqual(queries[many], queries[few], "set-based: no query per event")
        self.assertFalse(self.Event.search_count([('partner_id', '=', many.id)]))
        self.assertEqual(self.env['mautomate.erased.browser'].search_count([('partner_id', '=', many.id)]), 10000)

    def test_double_optin_opts_in_on_confirmation(self):
        erase_as_manager(self.env, self.partner)
        consent = self.consent(self.partner, state='pending')
        self.assertTrue(self.partner.mautomate_no_tracking, "a consent typed in a form is a claim until confirmed")
        consent._confirm('203.0.113.9')
        self.assertFalse(self.partner.mautomate_no_tracking or self.partner.mautomate_erased_on)

    def test_a_submit_without_consent_is_not_logged(self):
        erase_as_manager(self.env, self.partner)
        self.form.consent_text = False
        email = next(question for question in self.form.question_ids if question.field_name == 'email')
        partner, _lead, event = self.form._submit({email: 'ann@prospect.example.com'}, {'ip': '203.0.113.9'})
        self.assertEqual(partner, self.partner)
        self.assertFalse(event, "no consent given again: still not tracked")
        self.assertTrue(self.partner.mautomate_erased_on)

    def test_do_not_track_set_by_hand_stays_after_a_consent(self):
        self.partner.mautomate_no_tracking = True
        self.consent(self.partner)
        self.assertTrue(self.partner.mautomate_no_tracking)


@tagged('post_install', '-at_install')
class TestErasureHttp(MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.ann = self.env['res.partner'].create({'name': 'Ann Erased', 'email': 'ann.erased@example.com'})
        self.browser = self.new_browser_id()
        self.env['mautomate.event']._ingest([{'event_type': 'email_click', 'source': 'email', 'anonymous_id': self.browser,
                                              'partner_id': self.ann.id}])
        key = self.env['mautomate.api.key'].create({'name': 'Shop'})
        self.token = key.action_generate_token()['context']['default_token']
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        self.ebook.min_fill_seconds = 0
        self.opener.cookies.set('mautomate_vid', self.browser)

    def beacon(self):
        body = {'vid': self.browser, 'events': [{'type': 'page_view', 'url': 'https://shop.example.com/pricing', 'name': 'Pricing'}]}
        response = self.post_json('/mautomate/track', body)
        self.assertEqual(response.status_code, 202, response.text)
        return response.json()['stored']

    def api_event(self):
        response = self.post_json('/mautomate/api/v1/events', {'email': 'ann.erased@example.com', 'name': 'Order shipped'},
                                  headers={'Authorization': f'Bearer {self.token}'})
        self.assertEqual(response.status_code, 201, response.text)
        return response.json()['stored']

    def submit_ebook(self):
        page = self.url_open('/mautomate/form/ebook').text
        data = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1) for name in ('mautomate_token', 'csrf_token')}
        response = self.url_open('/mautomate/form/ebook', allow_redirects=False, data={
            **data, 'email': 'ann.erased@example.com', 'name': 'Ann Erased', 'consent': '1'})
        self.assertIn(response.status_code, (200, 303), response.text)

    def test_not_tracked_until_opted_in_again(self):
        erase_as_manager(self.env, self.ann)
        self.assertEqual(self.beacon(), 0, "her old browser is not logged, not even anonymously")
        self.assertEqual(self.api_event(), 0, "nor are API events of her contact")
        self.assertFalse(self.events())

        # She asks for the e-book and gives her consent again: she opted in, and is tracked again.
        self.submit_ebook()
        self.assertTrue(self.events([('event_type', '=', 'form_submit'), ('partner_id', '=', self.ann.id)]))
        self.assertFalse(self.ann.mautomate_no_tracking)
        self.assertEqual(self.beacon(), 1)
        self.assertEqual(self.api_event(), 1)
        # A typed e-mail is a claim: her browser's later events are logged, anonymous until a proof.
        self.assertFalse(self.events([('event_type', '=', 'page_view')]).partner_id)
        self.assertEqual(len(self.events([('partner_id', '=', self.ann.id)])), 2)
        self.env['website.visitor']._mautomate_prove_browser(self.ann, 'login', self.browser)
        self.assertEqual(self.beacon(), 1)
        self.assertEqual(self.events([('event_type', '=', 'page_view')]).partner_id, self.ann, "her browser is hers again")
        self.assertEqual(len(self.events([('partner_id', '=', self.ann.id)])), 4)

