from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo.tests import tagged

from .test_flows import FlowCase


class TriggerCase(FlowCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Scan = cls.env['mautomate.flow.trigger.scan']
        cls.Scoring = cls.env['mautomate.scoring']
        # The demo's rules would score these tests' people too; points do not decay here.
        cls.env['mautomate.score.rule'].search([]).action_archive()
        for key, value in (('score_half_life', 0), ('mql_score', 50), ('sql_score', 100), ('mql_min_grade', 'B')):
            cls.env['ir.config_parameter'].sudo().set_param(f'mautomate_marketing.{key}', value)
        cls.env['mautomate.score.rule'].create({'name': 'Fit: our market', 'rule_type': 'fit', 'points': 40,
                                                'domain': repr([('email', '=ilike', '%@fit.example.com')])})
        cls.lead_template = cls.env['mail.template'].create({
            'name': 'Flow test lead', 'model_id': cls.env['ir.model']._get_id('crm.lead'), 'subject': 'About {{ object.name }}',
            'email_from': 'shop@example.com', 'email_to': '{{ object.email_from }}', 'body_html': '<p>Hello lead</p>'})
        cls.salesman = cls.env['res.users'].create({'name': 'Sally Sales', 'login': 'sally.triggers'})
        # A birthday and loyalty points, as a database adds them (custom fields): the base contact has neither.
        cls.env['ir.model.fields'].create([{
            'name': name, 'field_description': label, 'ttype': ttype, 'model_id': cls.env['ir.model']._get_id('res.partner'),
        } for name, label, ttype in (('x_birthday', 'Birthday', 'date'), ('x_loyalty_points', 'Loyalty Points', 'integer'))])
        # The registry was set up again with the new fields: take the models and records anew.
        for name, model in (('Flow', 'mautomate.flow'), ('Step', 'mautomate.flow.step'), ('Trace', 'mautomate.flow.trace'),
                            ('Participant', 'mautomate.flow.participant'), ('Engine', 'mautomate.flow.engine'),
                            ('Event', 'mautomate.event'), ('Scan', 'mautomate.flow.trigger.scan'),
                            ('Scoring', 'mautomate.scoring')):
            setattr(cls, name, cls.env[model])
        for name in ('partner', 'bob', 'tag_vip', 'lead_template', 'salesman'):
            record = getattr(cls, name)
            setattr(cls, name, cls.env[record._name].browse(record.ids))
        cls.templates = {key: cls.env['mail.template'].browse(template.id) for key, template in cls.templates.items()}

    def trigger_flow(self, trigger_type, target='partner', reentry='once', step='thanks', flow_vals=None, **trigger_vals):
        """ A running flow with one trigger and one e-mail step. """
        flow = self.Flow.create({
            'name': f'{trigger_type} flow', 'target': target, 'reentry': reentry, **(flow_vals or {}),
            'trigger_ids': [(0, 0, {'trigger_type': trigger_type, **trigger_vals})],
        })
        template = self.lead_template if target == 'lead' else self.templates[step]
        self.step(flow, step, mail_template_id=template.id)
        flow.action_start()
        return flow

    def field(self, model, name):
        return self.env['ir.model.fields']._get(model, name).id

    def contact(self, name, email):
        return self.env['res.partner'].create({'name': name, 'email': email})

    def award(self, partner, points, fit=False):
        """ Points in the ledger, then what the refresh cron does. """
        self.env['mautomate.score.entry'].create({'partner_id': partner.id, 'points': points})
        self.Scoring._enqueue_refresh(partner.ids, fit=fit)
        self.Scoring._cron_refresh_queue()
        self.env.invalidate_all()

    def scan_daily(self, at):
        with freeze_time(at):
            self.Scan._cron_daily()
        self.env.invalidate_all()

    def scan_records(self, at):
        with freeze_time(at):
            self.Scan._cron_records()
        self.env.invalidate_all()

    def entries(self, flow, record):
        """ How many times the contact or lead entered the flow. """
        column = 'lead_id' if flow.target == 'lead' else 'partner_id'
        return self.Participant.search_count([('flow_id', '=', flow.id), (column, '=', record.id)])


@tagged('post_install', '-at_install')
class TestFlowTriggers(TriggerCase):

    def test_score_and_grade_reached(self):
        """ Score rises to 50 or more; grade becomes B2 or better. Each crossing enrols once. """
        score_flow = self.trigger_flow('score', score_threshold=50, reentry='always')
        stage_flow = self.trigger_flow('stage', stage='mql')
        grade_flow = self.trigger_flow('grade', grade='B2', grade_or_better=True, reentry='always')
        fitted = self.contact('Fiona Fit', 'fiona@fit.example.com')
        plain = self.contact('Paul Plain', 'paul@other.example.com')
        self.award(fitted, 30, fit=True)
        self.assertEqual(fitted.mautomate_grade, 'B3')
        self.assertFalse(score_flow.participant_ids | grade_flow.participant_ids)
        self.award(fitted, 30)
        self.assertEqual((fitted.mautomate_score, fitted.mautomate_grade), (60, 'B2'))
        self.assertEqual(score_flow.participant_ids.partner_id, fitted)
        self.assertEqual(grade_flow.participant_ids.partner_id, fitted)
        self.assertEqual(stage_flow.participant_ids.partner_id, fitted, "the contact's own stage: a flow of contacts")
        self.award(fitted, 10)
        self.assertEqual((self.entries(score_flow, fitted), self.entries(grade_flow, fitted)), (1, 1),
                         "still above: no new crossing")
        self.award(plain, 120, fit=True)
        self.assertEqual(plain.mautomate_grade, 'D1')
        self.assertEqual(score_flow.participant_ids.partner_id, fitted | plain)
        self.assertEqual(grade_flow.participant_ids.partner_id, fitted, "D1 is not B2 or better")
        self.assertEqual(stage_flow.participant_ids.partner_id, fitted, "a poor fit stays a lead")
        # A grade exactly: a contact that already has it does not enrol again when its score moves.
        exact_flow = self.trigger_flow('grade', grade='D1')
        self.award(plain, 10)
        self.assertFalse(exact_flow.participant_ids, "plain was D1 already")
        self.run_engine()
        self.assertEqual(sorted(self.mails(score_flow.step_ids).mapped('res_id')), sorted((fitted | plain).ids))

    def test_mql_hand_off_demo_flow(self):
        """ B2B: a lead becomes MQL -> its contact gets a mail and its salesperson a call; then the flow waits for
        the call to be done (it ends) or 5 days (the salesperson is reminded). A lead jumping to SQL passes MQL too. """
        flow = self.env.ref('mautomate_marketing.mautomate_flow_demo_mql_handoff')
        self.assertEqual((flow.state, flow.target), ('running', 'lead'))
        mql = self.contact('Mia Qualified', 'mia@fit.example.com')
        cold = self.contact('Colin Cold', 'colin@other.example.com')
        jump = self.contact('Jim Jumper', 'jim@fit.example.com')
        leads = self.env['crm.lead'].create([{
            'name': f'Deal {partner.name}', 'partner_id': partner.id, 'email_from': partner.email, 'type': 'lead',
            'user_id': self.salesman.id,
        } for partner in (mql, cold, jump)])
        for partner, points in ((mql, 60), (cold, 60), (jump, 120)):
            self.award(partner, points, fit=True)
        self.assertEqual(leads.mapped('mautomate_stage'), ['mql', 'lead', 'sql'])
        # The demo's leads that the scoring made MQL before are in it too: look at this test's.
        participants = flow.participant_ids.filtered(lambda participant: participant.lead_id in leads)
        self.assertEqual(participants.lead_id, leads[0] | leads[2])
        self.assertEqual(participants.partner_id, mql | jump, "the lead's contact comes with it")
        self.assertEqual(set(participants.mapped('target')), {'lead'})
        self.run_engine()
        mail_step = self.env.ref('mautomate_marketing.mautomate_flow_demo_mql_handoff_step_mail')
        mails = self.mails(mail_step).filtered(lambda mail: mail.res_id in leads.ids)
        self.assertEqual(sorted(mails.mapped('res_id')), sorted((leads[0] | leads[2]).ids))
        self.assertEqual(set(mails.mapped('model')), {'crm.lead'})
        self.assertIn('mia@fit.example.com', mails.filtered(lambda mail: mail.res_id == leads[0].id).email_to)
        call_type = self.env.ref('mail.mail_activity_data_call')
        calls = self.env['mail.activity'].search([('res_model', '=', 'crm.lead'), ('res_id', 'in', leads.ids),
                                                  ('activity_type_id', '=', call_type.id)])
        self.assertEqual(sorted(calls.mapped('res_id')), sorted((leads[0] | leads[2]).ids))
        self.assertEqual(set(calls.mapped('user_id')), {self.salesman})
        # Jim's salesperson calls him: the call done is an event of the lead, which ends his wait at once.
        by_lead = {participant.lead_id: participant for participant in participants}
        calls.filtered(lambda call: call.res_id == leads[2].id).action_feedback(feedback='Called')
        done = self.Event.search([('event_type', '=', 'activity_done'), ('lead_id', '=', leads[2].id)])
        self.assertEqual((done.partner_id, done.name), (leads[2].partner_id, 'Call the new marketing qualified lead'))
        self.run_engine(self.start + timedelta(hours=2))
        self.assertEqual(by_lead[leads[2]].state, 'exited')
        # Mia's call stays open: her salesperson is reminded after 5 days, not before.
        self.run_engine(self.start + timedelta(days=4, hours=23))
        self.assertEqual(by_lead[leads[0]].state, 'running')
        self.run_engine(self.start + timedelta(days=5))
        self.assertEqual(by_lead[leads[0]].state, 'completed')
        reminders = self.env['mail.activity'].search([('res_model', '=', 'crm.lead'), ('res_id', 'in', leads.ids),
                                                      ('summary', 'ilike', '5 days old')])
        self.assertEqual(reminders.res_id, leads[0].id)

    def test_gained_100_loyalty_points(self):
        """ A thank-you for 100 loyalty points gained in one change (a custom field, written by the ORM). """
        flow = self.trigger_flow('field', reentry='always', field_id=self.field('res.partner', 'x_loyalty_points'),
                                 field_change='increase', field_amount=100)
        fan, other = self.contact('Fanny Fan', 'fanny@example.com'), self.contact('Otto Other', 'otto@example.com')
        fan.x_loyalty_points = 40
        (fan | other).write({'x_loyalty_points': 139})
        self.assertEqual(flow.participant_ids.partner_id, other, "Fanny gained 99, Otto 139")
        fan.write({'x_loyalty_points': 240, 'name': 'Fanny'})
        fan.x_loyalty_points = 0
        fan.x_loyalty_points = 100
        self.assertEqual((self.entries(flow, fan), self.entries(flow, other)), (2, 1))
        self.run_engine()
        self.assertEqual(len(self.mails(flow.step_ids, fan)), 2)

    def test_field_changed_by_an_amount(self):
        """ The engagement score grows by 100 or more in one change (the scoring's SQL update); a lead's expected
        revenue grows by 1000 or more (a write of the lead). """
        loyalty_flow = self.trigger_flow('field', reentry='always', field_id=self.field('res.partner', 'mautomate_score'),
                                         field_change='increase', field_amount=100)
        fan = self.contact('Fanny Fan', 'fanny@fit.example.com')
        self.award(fan, 40)
        self.award(fan, 99)
        self.assertFalse(loyalty_flow.participant_ids, "+99 is not +100")
        self.award(fan, 120)
        self.assertEqual(self.entries(loyalty_flow, fan), 1)

        deal_flow = self.trigger_flow('field', target='lead', reentry='always',
                                      field_id=self.field('crm.lead', 'expected_revenue'), field_change='increase',
                                      field_amount=1000)
        lead = self.env['crm.lead'].create({'name': 'Growing deal', 'partner_id': fan.id, 'expected_revenue': 500})
        other = self.env['crm.lead'].create({'name': 'Other deal', 'expected_revenue': 500})
        lead.expected_revenue = 1200
        self.assertFalse(deal_flow.participant_ids)
        (lead | other).write({'expected_revenue': 2500})
        self.assertEqual(deal_flow.participant_ids.lead_id, lead | other)
        self.assertEqual(deal_flow.participant_ids.partner_id, fan, "a lead without contact enrols alone")
        lead.expected_revenue = 100
        self.assertEqual(len(deal_flow.participant_ids), 2, "a decrease is not a gain")

    def test_field_changed_to_a_value(self):
        """ Any change of a field, when the contact then matches the trigger's domain: "became a CEO". """
        flow = self.trigger_flow('field', field_id=self.field('res.partner', 'function'), field_change='any',
                                 filter_domain=repr([('function', 'ilike', 'CEO')]))
        self.partner.function = 'CEO'
        self.bob.function = 'Intern'
        self.assertEqual(flow.participant_ids.partner_id, self.partner)
        self.bob.write({'function': 'CEO', 'name': 'Bob the Boss'})
        self.bob.name = 'Bob'
        self.assertEqual(flow.participant_ids.partner_id, self.partner | self.bob)
        flow.action_pause()
        carl = self.contact('Carl', 'carl@example.com')
        carl.function = 'CEO'
        self.assertNotIn(carl, flow.participant_ids.partner_id, "a paused flow takes no one")

    def test_birthday_greeting_every_year(self):
        """ A yearly date: the day and month of the contact's birthday, once a year, with an offer. """
        flow = self.trigger_flow('date', reentry='always', step='offer', date_field_id=self.field('res.partner', 'x_birthday'),
                                 date_yearly=True)
        offer = flow.step_ids
        today, tomorrow = self.start.date(), self.start.date() + timedelta(days=1)
        born_today = self.env['res.partner'].create({'name': 'Today Born', 'email': 'today@example.com',
                                                     'x_birthday': today - relativedelta(years=30)})
        born_tomorrow = self.env['res.partner'].create({'name': 'Tomorrow Born', 'email': 'tomorrow@example.com',
                                                        'x_birthday': tomorrow - relativedelta(years=40)})
        self.env['res.partner'].create({'name': 'No Date', 'email': 'nodate@example.com'})
        self.scan_daily(self.start)
        self.scan_daily(self.start + timedelta(hours=2))
        self.assertEqual(flow.participant_ids.partner_id, born_today, "once on the day, however often the cron runs")
        self.scan_daily(self.start + timedelta(days=1))
        self.assertEqual(flow.participant_ids.partner_id, born_today | born_tomorrow)
        # Paused on day 2, started again on day 3: day 2's birthday is not caught up, day 3's is taken at once.
        born_day_2, born_day_3 = self.env['res.partner'].create([
            {'name': 'Day 2', 'email': 'day2@example.com', 'x_birthday': today + timedelta(days=2) - relativedelta(years=20)},
            {'name': 'Day 3', 'email': 'day3@example.com', 'x_birthday': today + timedelta(days=3) - relativedelta(years=25)}])
        flow.action_pause()
        self.scan_daily(self.start + timedelta(days=2))
        cron = self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_trigger_daily')
        self.env['ir.cron.trigger'].search([('cron_id', '=', cron.id)]).unlink()
        with freeze_time(self.start + timedelta(days=3)):
            flow.action_start()
        self.assertTrue(self.env['ir.cron.trigger'].search_count([('cron_id', '=', cron.id)]), "the daily scan runs at once")
        self.scan_daily(self.start + timedelta(days=3))
        self.assertEqual(flow.participant_ids.partner_id, born_today | born_tomorrow | born_day_3)
        self.assertNotIn(born_day_2, flow.participant_ids.partner_id)
        next_year = self.start + relativedelta(years=1)
        self.scan_daily(next_year)
        self.assertEqual((self.entries(flow, born_today), self.entries(flow, born_tomorrow)), (2, 1))
        self.run_engine(next_year)
        self.assertEqual(len(self.mails(offer, born_today)), 2)

    def test_leap_day_birthdays_count_on_28_february(self):
        with freeze_time('2027-02-27 08:00:00'):
            flow = self.trigger_flow('date', reentry='always', date_field_id=self.field('res.partner', 'x_birthday'),
                                     date_yearly=True)
            leap = self.env['res.partner'].create({'name': 'Leap Born', 'email': 'leap@example.com',
                                                   'x_birthday': '2000-02-29'})
        self.scan_daily(datetime(2027, 2, 27, 8))
        self.assertFalse(flow.participant_ids)
        self.scan_daily(datetime(2027, 2, 28, 8))
        self.assertEqual(flow.participant_ids.partner_id, leap)
        self.scan_daily(datetime(2027, 3, 1, 8))
        self.assertEqual(len(flow.participant_ids), 1)

    def test_support_contract_ends_in_30_days(self):
        """ A date with an offset, on leads: 30 days before the lead's deadline (its contract end), each lead
        once; two leads of one contact both enrol (a flow of leads is unique per lead, not per contact). """
        flow = self.trigger_flow('date', target='lead', date_field_id=self.field('crm.lead', 'date_deadline'),
                                 date_offset=30, date_direction='before',
                                 flow_vals={'domain': repr([('name', '=like', 'Contract%')])})
        today = self.start.date()
        due, next_day, passed, none = self.env['crm.lead'].create([
            {'name': 'Contract due', 'partner_id': self.partner.id, 'email_from': 'ann@prospect.example.com',
             'date_deadline': today + timedelta(days=30)},
            {'name': 'Contract next', 'partner_id': self.partner.id, 'email_from': 'ann@prospect.example.com',
             'date_deadline': today + timedelta(days=31)},
            {'name': 'Contract passed', 'email_from': 'past@example.com', 'date_deadline': today + timedelta(days=10)},
            {'name': 'No contract', 'email_from': 'none@example.com'},
        ])
        self.scan_daily(self.start)
        self.assertEqual(flow.participant_ids.lead_id, due)
        self.scan_daily(self.start + timedelta(days=1))
        self.assertEqual(flow.participant_ids.lead_id, due | next_day)
        self.assertEqual(flow.participant_ids.partner_id, self.partner)
        self.scan_daily(self.start + timedelta(days=40))
        self.assertNotIn(passed | none, flow.participant_ids.lead_id)
        self.run_engine(self.start + timedelta(days=1))
        mails = self.mails(flow.step_ids)
        self.assertEqual(sorted(mails.mapped('res_id')), sorted((due | next_day).ids))
        self.assertEqual(set(mails.mapped('email_to')), {'ann@prospect.example.com'})

    def test_no_visit_in_30_days_win_back(self):
        """ Inactivity: contacts whose last page view is 30 days old, once per silence. """
        flow = self.trigger_flow('inactivity', reentry='always', event_type='page_view', inactivity_days=30)
        carl = self.contact('Carl Casual', 'carl@example.com')
        dave = self.contact('Dave Reader', 'dave@example.com')
        start = self.start
        for partner, when in ((self.partner, start - timedelta(days=30, hours=2)),
                              (self.bob, start - timedelta(days=30, hours=2)), (self.bob, start - timedelta(days=5)),
                              (carl, start - timedelta(days=29, hours=12))):
            self.ingest(event_type='page_view', partner_id=partner.id, url='https://example.com/', occurred_at=when, at=when)
        self.ingest(event_type='email_open', partner_id=dave.id, occurred_at=start - timedelta(days=40))
        self.scan_daily(start)
        self.scan_daily(start + timedelta(hours=3))
        self.assertEqual(flow.participant_ids.partner_id, self.partner)
        self.scan_daily(start + timedelta(days=1))
        self.assertEqual(flow.participant_ids.partner_id, self.partner | carl)
        # Carl comes back, then is silent again; Bob's silence reaches 30 days meanwhile.
        self.ingest(event_type='page_view', partner_id=carl.id, url='https://example.com/',
                    occurred_at=start + timedelta(days=2, hours=-1))
        self.scan_daily(start + timedelta(days=32))
        self.assertEqual((self.entries(flow, self.partner), self.entries(flow, carl), self.entries(flow, self.bob)),
                         (1, 2, 1))
        self.assertNotIn(dave, flow.participant_ids.partner_id)

    def test_record_of_another_model_starts_matching(self):
        """ "Order confirmed" through another model's records, here a lead won (a sale order confirmed is the
        same trigger on sale.order, [('state', '=', 'sale')], contact field partner_id): the contact of a record
        that starts matching enrols once per record; records matching before the flow started do not. """
        won = self.env['crm.stage'].search([('is_won', '=', True)], limit=1)
        old_customer = self.contact('Olga Old', 'olga@example.com')
        old_deal = self.env['crm.lead'].create({'name': 'Old deal', 'partner_id': old_customer.id, 'stage_id': won.id})
        flow = self.trigger_flow('record', reentry='always', res_model_id=self.env['ir.model']._get_id('crm.lead'),
                                 filter_domain=repr([('stage_id.is_won', '=', True)]), partner_field='partner_id')
        cron = self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_trigger_records')
        self.assertTrue(self.env['ir.cron.trigger'].search_count([('cron_id', '=', cron.id)]), "the cron is woken at start")
        self.scan_records(self.start)
        deal, lost = self.env['crm.lead'].create([{'name': 'New deal', 'partner_id': self.partner.id},
                                                  {'name': 'Lost deal', 'partner_id': self.bob.id}])
        old_deal.description = 'Touched again'
        deal.stage_id = won
        lost.action_set_lost()
        self.scan_records(self.start + timedelta(minutes=5))
        self.assertEqual(flow.participant_ids.partner_id, self.partner)
        deal.description = 'Edited after the win'
        self.scan_records(self.start + timedelta(minutes=10))
        self.assertEqual(len(flow.participant_ids), 1, "one record enrols once")
        self.run_engine(self.start + timedelta(minutes=10))
        self.assertEqual(self.mails(flow.step_ids).mapped('res_id'), [self.partner.id])

    def test_enrol_all_contacts_matching_a_domain(self):
        flow = self.trigger_flow('manual', flow_vals={'domain': repr([('email', 'ilike', 'bulk.example.com')])})
        partners = self.env['res.partner'].create([{'name': f'Bulk {i}', 'email': f'bulk{i}@bulk.example.com'}
                                                   for i in range(250)])
        self.env['res.partner'].create({'name': 'Bulk outsider', 'email': 'out@elsewhere.example.org'})
        self.assertEqual(flow.action_enroll_domain([('name', '=like', 'Bulk%')], batch_size=100), 250)
        self.assertEqual(flow.participant_ids.partner_id, partners)
        wizard = self.env['mautomate.flow.enroll'].with_context(active_model='mautomate.flow', active_id=flow.id).create({
            'domain': repr([('name', '=like', 'Bulk%')])})
        self.assertEqual((wizard.flow_id, wizard.mode, wizard.match_count), (flow, 'domain', 250))
        self.assertIn("0 contacts enrolled", wizard.action_enroll()['params']['message'], "once each")
        lead_flow = self.trigger_flow('manual', target='lead')
        leads = self.env['crm.lead'].create([{'name': f'Bulk lead {i}'} for i in range(3)])
        self.assertEqual(lead_flow.action_enroll_domain([('name', '=like', 'Bulk lead%')]), 3)
        self.assertEqual(lead_flow.participant_ids.lead_id, leads)

    def test_lead_without_contact(self):
        """ A flow of leads: a lead without contact gets its mail, a step on the contact is skipped and the
        flow goes on (a time-of-day step included). """
        flow = self.trigger_flow('manual', target='lead')
        tag = self.step(flow, 'tag', kind='tags', parents=flow.step_ids, tag_add_ids=[(4, self.tag_vip.id)])
        self.step(flow, 'later', kind='exit', parents=tag, delay=1, run_at_time=True, run_time=9)
        lead = self.env['crm.lead'].create({'name': 'No contact yet', 'email_from': 'nobody@lead.example.com'})
        participant = flow.action_enroll(lead.ids)
        self.assertFalse(participant.partner_id)
        self.run_engine()
        self.run_engine(self.start + timedelta(days=2))
        states = {trace.step_id.name: (trace.state, trace.skip_reason) for trace in participant.trace_ids}
        self.assertEqual(states, {'thanks': ('done', False), 'tag': ('skipped', 'no_contact'), 'later': ('done', False)})
        self.assertEqual(participant.state, 'exited')

    def test_invalid_triggers_are_refused(self):
        flow = self.Flow.create({'name': 'Invalid'})
        Trigger = self.env['mautomate.flow.trigger']
        with self.refused("stored field of the Contact"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'field', 'field_id': self.field('crm.lead', 'expected_revenue')})
        with self.refused("increase is of a number"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'field', 'field_id': self.field('res.partner', 'function'),
                            'field_change': 'increase'})
        with self.refused("trigger's domain is not valid"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'field', 'field_id': self.field('res.partner', 'function'),
                            'filter_domain': "[('no_such_field', '=', 1)]"})
        with self.refused("stored date field"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'date', 'date_field_id': self.field('res.partner', 'name')})
        with self.refused("stored date field"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'date',
                            'date_field_id': self.field('crm.lead', 'date_deadline')})
        with self.refused("must lead to a Contact"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'record', 'res_model_id': self.env['ir.model']._get_id('crm.lead'),
                            'partner_field': 'team_id'})
        with self.refused("needs a stage"):
            Trigger.create({'flow_id': flow.id, 'trigger_type': 'stage'})
        with self.refused("template must be one of"):
            self.Flow.create({'name': 'Leads', 'target': 'lead', 'step_ids': [(0, 0, {
                'name': 'Partner mail', 'kind': 'email', 'mail_template_id': self.templates['thanks'].id})]})
        participant_flow = self.trigger_flow('manual')
        participant_flow.action_enroll([self.partner.id])
        with self.refused("cannot change from contacts to leads"):
            participant_flow.target = 'lead'
