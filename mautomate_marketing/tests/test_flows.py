import threading
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time
from lxml import etree
from psycopg2 import IntegrityError

from odoo import SUPERUSER_ID, api, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.registry import DummyRLock, Registry
from odoo.service.model import retrying
from odoo.tests import common, tagged, users
from odoo.tools import mute_logger

from ..models.mautomate_flow_step import MautomateFlowStep
from .common import MautomateCase, leave_database_as_found


class Killed(BaseException):
    """ A worker killed mid-run: no `except Exception` catches it. """


class FlowCase(MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Flow = cls.env['mautomate.flow']
        cls.Step = cls.env['mautomate.flow.step']
        cls.Trace = cls.env['mautomate.flow.trace']
        cls.Participant = cls.env['mautomate.flow.participant']
        cls.Engine = cls.env['mautomate.flow.engine']
        cls.start = fields.Datetime.now().replace(microsecond=0)
        cls.templates = {}
        for key in ('mail1', 'mail2a', 'mail2b', 'thanks', 'tips', 'offer', 'merged'):
            cls.templates[key] = cls.env['mail.template'].create({
                'name': f'Flow test {key}',
                'model_id': cls.env['ir.model']._get_id('res.partner'),
                'subject': f'Subject {key}',
                'email_from': 'shop@example.com',
                # The offer's template names no recipient: its mail goes to the contact.
                'email_to': False if key == 'offer' else '{{ object.email_formatted }}',
                'body_html': f'<p>Hello {key}</p>',
            })
        cls.bob = cls.env['res.partner'].create({'name': 'Bob Buyer', 'email': 'bob@buyer.example.com'})
        cls.tag_vip = cls.env['res.partner.category'].create({'name': 'Flow VIP'})

    def setUp(self):
        super().setUp()
        # The test's clock stands still at its start; run_engine moves it.
        frozen = freeze_time(self.start)
        frozen.start()
        self.addCleanup(frozen.stop)

    @contextmanager
    def refused(self, message):
        """ A change refused with a ValidationError matching `message`, rolled back with the cache. """
        with self.assertRaisesRegex(ValidationError, message), self.env.cr.savepoint():
            yield
        self.env.invalidate_all()

    def make_flow(self, event_type='form_submit', name_pattern=None, **vals):
        return self.Flow.create({
            'name': vals.pop('name', 'Test flow'),
            'trigger_ids': [(0, 0, {'trigger_type': 'event', 'event_type': event_type, 'name_pattern': name_pattern})],
            **vals,
        })

    def step(self, flow, name, kind='email', parents=(), branch='always', delay=0, unit='days', **vals):
        if kind == 'email' and 'mail_template_id' not in vals:
            vals['mail_template_id'] = self.templates[name].id
        return self.Step.create({'flow_id': flow.id, 'name': name, 'kind': kind, 'branch': branch, 'delay': delay,
                                 'delay_unit': unit, 'parent_ids': [(6, 0, [parent.id for parent in parents])], **vals})

    def welcome_flow(self):
        """ On a form: mail 1 now; 3 days later, mail 2a if mail 1 was opened, else mail 2b. Returns the flow and its steps. """
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        opened = self.step(flow, 'opened?', kind='condition', parents=[mail1], delay=3, condition_type='event',
                           condition_event_type='email_open', condition_step_id=mail1.id)
        mail2a = self.step(flow, 'mail2a', parents=[opened], branch='yes')
        mail2b = self.step(flow, 'mail2b', parents=[opened], branch='no')
        return flow, mail1, opened, mail2a, mail2b

    def run_engine(self, at=None, batch_size=500):
        """ What the cron does until no step is due, at `at` (default: the test's start). """
        with freeze_time(at or self.start):
            while self.Engine._cron_process(batch_size=batch_size):
                pass
        self.env.invalidate_all()

    def ingest(self, **vals):
        with freeze_time(vals.pop('at', self.start)):
            return super().ingest(**vals)

    def mails(self, step, partner=None):
        domain = [('step_id', '=', step.id), ('state', '=', 'done'), ('mail_mail_id', '!=', False)]
        if partner:
            domain.append(('participant_id.partner_id', '=', partner.id))
        return self.Trace.search(domain).mail_mail_id

    def got(self, partner):
        """ Names of the steps done for the contact, in order. """
        traces = self.Trace.search([('participant_id.partner_id', '=', partner.id), ('state', '=', 'done')],
                                   order='done_at, id')
        return traces.step_id.mapped('name')


@tagged('post_install', '-at_install')
class TestFlows(FlowCase):

    def test_welcome_series(self):
        """ On sign-up, mail 1 now; after 3 days mail 2a if mail 1 was opened, else mail 2b. """
        flow, mail1, _opened, mail2a, mail2b = self.welcome_flow()
        flow.action_start()
        self.ingest(event_type='form_submit', partner_id=self.partner.id)
        self.ingest(event_type='form_submit', partner_id=self.bob.id)
        self.assertEqual(len(flow.participant_ids), 2)
        self.run_engine()
        mails = self.mails(mail1)
        self.assertEqual(sorted(mails.mapped('res_id')), sorted([self.partner.id, self.bob.id]))
        self.assertEqual(set(mails.mapped('subject')), {'Subject mail1'})
        self.assertEqual(mails.mailing_trace_ids.mapped('trace_status'), ['outgoing'] * 2)
        # Ann opens mail 1 (the open pixel marks its mailing trace): an email_open event of her contact.
        with freeze_time(self.start + timedelta(days=1)):
            self.mails(mail1, self.partner).mailing_trace_ids.set_opened()
            # Another mail opened by Bob does not count: only the mails of step "mail1".
            self.ingest(event_type='email_open', partner_id=self.bob.id, at=self.start + timedelta(days=1))
        self.run_engine(self.start + timedelta(days=2, hours=23))
        self.assertEqual(self.got(self.partner), ['mail1'])
        self.run_engine(self.start + timedelta(days=3))
        self.assertEqual(self.got(self.partner), ['mail1', 'opened?', 'mail2a'])
        self.assertEqual(self.got(self.bob), ['mail1', 'opened?', 'mail2b'])
        self.assertEqual(self.mails(mail2a).mapped('res_id'), [self.partner.id])
        self.assertEqual(self.mails(mail2b).mapped('res_id'), [self.bob.id])
        self.assertEqual(set(flow.participant_ids.mapped('state')), {'completed'})
        trace = self.Trace.search([('step_id', '=', mail2a.id)])
        self.assertEqual((trace.branch, trace.done_at), ('yes', self.start + timedelta(days=3)))

    def test_catalogue_download_series(self):
        """ Thanks now, care tips after 2 days, an offer 7 days after the download. """
        flow = self.make_flow('download')
        thanks = self.step(flow, 'thanks')
        tips = self.step(flow, 'tips', parents=[thanks], delay=2)
        offer = self.step(flow, 'offer', parents=[thanks], delay=7)
        flow.action_start()
        self.ingest(event_type='download', partner_id=self.partner.id, url='https://example.com/catalogue.pdf')
        for day, expected in ((0, ['thanks']), (1, ['thanks']), (2, ['thanks', 'tips']), (6, ['thanks', 'tips']),
                              (7, ['thanks', 'tips', 'offer'])):
            self.run_engine(self.start + timedelta(days=day))
            self.assertEqual(self.got(self.partner), expected, f"day {day}")
        self.assertEqual(self.Trace.search([('step_id', '=', offer.id)]).scheduled_at, self.start + timedelta(days=7))
        self.assertEqual(len(self.mails(tips)), 1)
        self.assertEqual(self.mails(offer).recipient_ids, self.partner)
        self.assertFalse(self.got(self.bob))

    def test_abandoned_purchase(self):
        """ The shop's "Cart abandoned" API event: an offer 4 hours later, unless the order was confirmed
        meanwhile (the goal; here a won deal of the contact, with sale: [('sale_order_ids.state', '=', 'sale')]):
        the buyer leaves the flow as a conversion and gets no offer. """
        flow = self.make_flow('custom', name_pattern='Cart abandoned*',
                              goal_domain=repr([('opportunity_ids.stage_id.is_won', '=', True)]))
        offer = self.step(flow, 'offer', delay=4, unit='hours')
        flow.action_start()
        for partner in (self.partner, self.bob):
            self.ingest(event_type='custom', source='api', name='Cart abandoned: garden chair', partner_id=partner.id)
        won = self.env['crm.stage'].search([('is_won', '=', True)], limit=1)
        self.env['crm.lead'].create({'name': 'Garden chair order', 'partner_id': self.bob.id, 'stage_id': won.id})
        self.run_engine(self.start + timedelta(hours=3, minutes=59))
        self.assertFalse(self.mails(offer))
        self.run_engine(self.start + timedelta(hours=4))
        self.assertEqual(self.mails(offer).recipient_ids, self.partner)
        bought = flow.participant_ids.filtered(lambda participant: participant.partner_id == self.bob)
        self.assertEqual((bought.state, bought.trace_ids.skip_reason), ('converted', 'goal'))
        self.assertEqual((flow.converted_count, flow.running_count), (1, 0))

    def test_parcel_delivered_demo_flow(self):
        """ The demo flow: an API event named "Parcel delivered" mails the contact at once. """
        flow = self.env.ref('mautomate_marketing.mautomate_flow_demo_parcel_delivered')
        self.assertEqual(flow.state, 'running')
        cron = self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_engine')
        triggers_before = self.env['ir.cron.trigger'].search_count([('cron_id', '=', cron.id)])
        self.ingest(event_type='custom', source='api', name='Parcel returned', partner_id=self.bob.id)
        self.env['mautomate.event']._ingest_api_events([{
            'event_type': 'custom', 'source': 'api', 'name': 'Parcel delivered', 'email': 'ann@prospect.example.com',
            'contact_name': False, 'partner_id': False, 'occurred_at': self.start}])
        self.assertEqual(flow.participant_ids.partner_id, self.partner, "only the delivered parcel enrols")
        self.assertGreater(self.env['ir.cron.trigger'].search_count([('cron_id', '=', cron.id)]), triggers_before,
                           "the engine is woken at once")
        self.run_engine()
        first_step = self.env.ref('mautomate_marketing.mautomate_flow_demo_parcel_delivered_step_mail')
        mail = self.mails(first_step, self.partner)
        self.assertEqual(mail.subject, 'Your parcel has arrived')
        self.assertIn('ann@prospect.example.com', mail.email_to)

    def test_merge_step_runs_once(self):
        """ Two paths continue with one step: a participant reaching it by either path runs it once, and a
        step after two parallel parents runs once too. """
        flow = self.make_flow('form_submit')
        vip = self.step(flow, 'vip?', kind='condition', condition_domain=repr([('category_id', 'in', self.tag_vip.ids)]))
        mail2a = self.step(flow, 'mail2a', parents=[vip], branch='yes')
        mail2b = self.step(flow, 'mail2b', parents=[vip], branch='no')
        merged = self.step(flow, 'merged', parents=[mail2a, mail2b], delay=1)
        # two parallel first steps joining
        tag = self.step(flow, 'tag', kind='tags', tag_add_ids=[(6, 0, self.env['res.partner.category'].create(
            {'name': 'Flow joined'}).ids)])
        joined = self.step(flow, 'joined', kind='score', parents=[tag, vip], score_points=5)
        flow.action_start()
        self.partner.category_id = self.tag_vip
        flow.action_enroll([self.partner.id, self.bob.id])
        self.run_engine()
        self.run_engine(self.start + timedelta(days=1))
        self.assertEqual(sorted(self.mails(merged).mapped('res_id')), sorted([self.partner.id, self.bob.id]))
        for partner, branch_mail in ((self.partner, mail2a), (self.bob, mail2b)):
            self.assertEqual(len(self.mails(merged, partner)), 1)
            self.assertEqual(len(self.mails(branch_mail, partner)), 1)
            self.assertEqual(self.Trace.search_count([('step_id', '=', joined.id), ('participant_id.partner_id', '=', partner.id)]), 1)
            self.assertEqual(self.env['mautomate.score.entry'].search_count(
                [('partner_id', '=', partner.id), ('rule_id', '=', False), ('points', '=', 5)]), 1)
        self.assertFalse(self.mails(mail2b, self.partner))

    def test_kill_and_run_again(self):
        """ A worker killed in its second batch: the first batch is kept, the second rolled back whole; run
        again, every participant gets each step exactly once. """
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        tag = self.step(flow, 'tag', kind='tags', parents=[mail1], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        flow.action_start()
        partners = self.env['res.partner'].create([{'name': f'Kill {i}', 'email': f'kill{i}@example.com'} for i in range(7)])
        flow.action_enroll(partners.ids)
        execute = MautomateFlowStep._flow_execute
        seen = []

        def killed_on_the_fifth(step, traces, now):
            seen.extend(traces.ids)
            if len(seen) >= 5:
                raise Killed()
            return execute(step, traces, now)

        killed = False
        # Not assertRaises: it would roll back the batches committed before the kill.
        with patch.object(MautomateFlowStep, '_flow_execute', killed_on_the_fifth):
            try:
                while True:
                    with self.env.cr.savepoint():  # a committed batch
                        if not self.Engine._process_batch(self.start, batch_size=3):
                            break
            except Killed:
                killed = True
        self.assertTrue(killed)
        self.env.invalidate_all()
        self.assertEqual(len(self.mails(mail1)), 3, "the first batch is kept")
        self.assertEqual(self.Trace.search_count([('step_id', '=', mail1.id), ('state', '=', 'scheduled')]), 4)
        self.run_engine(batch_size=3)
        self.assertEqual(sorted(self.mails(mail1).mapped('res_id')), sorted(partners.ids))
        self.assertEqual(self.env['mail.mail'].search_count([('mailing_id', '=', mail1.mailing_id.id)]), 7)
        self.assertEqual(self.Trace.search_count([('step_id', '=', tag.id), ('state', '=', 'done')]), 7)
        self.assertEqual(set(self.Trace.search([('flow_id', '=', flow.id)]).mapped('attempts')), {0})
        self.assertEqual(partners.category_id, self.tag_vip)

    def test_opted_out_and_blacklisted_contacts_get_no_mail(self):
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        after = self.step(flow, 'tag', kind='tags', parents=[mail1], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        flow.action_start()
        blacklisted = self.env['res.partner'].create({'name': 'Black Listed', 'email': 'black@example.com'})
        untracked = self.env['res.partner'].create({'name': 'No Track', 'email': 'notrack@example.com',
                                                    'mautomate_no_tracking': True})
        no_email = self.env['res.partner'].create({'name': 'No Mail'})
        flow.action_enroll((self.partner | blacklisted | untracked | no_email).ids)
        self.env['mail.blacklist']._add('black@example.com')
        self.run_engine()
        self.assertEqual(self.mails(mail1).mapped('res_id'), [self.partner.id])
        reasons = {trace.participant_id.partner_id: trace.skip_reason
                   for trace in self.Trace.search([('step_id', '=', mail1.id), ('state', '=', 'skipped')])}
        self.assertEqual(reasons, {blacklisted: 'blacklisted', untracked: 'opted_out', no_email: 'no_email'})
        self.assertEqual(self.Trace.search_count([('step_id', '=', after.id), ('state', '=', 'done')]), 4,
                         "the flow goes on without the mail")

    def test_reentry_and_audience(self):
        flow = self.make_flow('form_submit', domain=repr([('email', 'ilike', 'example.com')]), reentry='once')
        self.step(flow, 'mail1')
        flow.action_start()
        outsider = self.env['res.partner'].create({'name': 'Out Sider', 'email': 'out@elsewhere.org'})
        for _time in range(2):
            self.ingest(event_type='form_submit', partner_id=self.partner.id)
            self.ingest(event_type='form_submit', partner_id=outsider.id)
        self.assertEqual(flow.participant_ids.partner_id, self.partner)
        self.assertEqual(len(flow.participant_ids), 1, "once: a contact enters once")
        # Two triggers at once (neither sees the other's participant): the database keeps one.
        with self.assertRaises(IntegrityError), mute_logger('odoo.sql_db'), self.env.cr.savepoint():
            self.env.cr.execute("INSERT INTO mautomate_flow_participant (flow_id, partner_id, state, exclusive) "
                                "VALUES (%s, %s, 'running', TRUE)", [flow.id, self.partner.id])
        flow.reentry = 'always'
        self.ingest(event_type='form_submit', partner_id=self.partner.id)
        self.assertEqual(len(flow.participant_ids), 2)
        self.run_engine()
        self.assertEqual(len(self.mails(flow.step_ids)), 2, "one mail per entry")
        flow.write({'reentry': 'after', 'reentry_days': 30})
        self.ingest(event_type='form_submit', partner_id=self.partner.id)
        self.assertEqual(len(flow.participant_ids), 2, "entered less than 30 days ago")
        # A paused flow enrols no one; its participants wait.
        flow.action_pause()
        flow.reentry = 'always'
        self.ingest(event_type='form_submit', partner_id=self.partner.id)
        self.assertEqual(len(flow.participant_ids), 2)
        with self.assertRaises(UserError):
            flow.action_enroll([self.bob.id])

    def test_wait_for_event_and_goal(self):
        """ B2B hand-off: mail and a call activity for the salesperson, then wait 5 days for a form; the
        goal (a tag) takes a contact out as converted. """
        salesman = self.env['res.users'].create({'name': 'Sam Sales', 'login': 'sam.flow'})
        self.partner.user_id = salesman
        flow = self.make_flow('form_submit', goal_domain=repr([('category_id', 'in', self.tag_vip.ids)]))
        call = self.step(flow, 'call', kind='activity', activity_type_id=self.env.ref('mail.mail_activity_data_call').id,
                         activity_summary='Call the new lead', activity_days=1)
        wait = self.step(flow, 'wait', kind='wait', parents=[call], wait_event_type='page_view', wait_timeout=5)
        came = self.step(flow, 'thanks', parents=[wait], branch='yes')
        timeout = self.step(flow, 'tips', parents=[wait], branch='timeout')
        flow.action_start()
        flow.action_enroll([self.partner.id, self.bob.id])
        self.run_engine()
        activity = self.env['mail.activity'].search([('res_model', '=', 'res.partner'), ('res_id', '=', self.partner.id),
                                                     ('summary', '=', 'Call the new lead')])
        self.assertEqual(activity.user_id, salesman)
        self.assertEqual(activity.date_deadline, self.start.date() + timedelta(days=1))
        self.assertEqual(set(self.Trace.search([('step_id', '=', wait.id)]).mapped('state')), {'waiting'})
        # Ann visits a page on day 2: woken at once, she goes on by the yes branch.
        self.ingest(event_type='page_view', partner_id=self.partner.id, url='https://example.com/pricing',
                    at=self.start + timedelta(days=2))
        self.run_engine(self.start + timedelta(days=2))
        self.assertEqual(self.got(self.partner), ['call', 'wait', 'thanks'])
        self.assertEqual(self.got(self.bob), ['call'])
        self.run_engine(self.start + timedelta(days=5))
        self.assertEqual(self.got(self.bob), ['call', 'wait', 'tips'])
        self.assertEqual(self.Trace.search([('step_id', '=', timeout.id)]).branch, 'timeout')
        self.assertTrue(self.mails(came, self.partner))
        # The goal: a converted participant skips its next steps.
        other = self.env['res.partner'].create({'name': 'Goal Getter', 'email': 'goal@example.com'})
        flow.action_enroll([other.id])
        other.category_id = self.tag_vip
        self.run_engine(self.start + timedelta(days=6))
        participant = flow.participant_ids.filtered(lambda participant: participant.partner_id == other)
        self.assertEqual(participant.state, 'converted')
        self.assertEqual(participant.trace_ids.mapped('skip_reason'), ['goal'])
        self.assertEqual(flow.converted_count, 1)

    def test_failed_step_is_retried_then_stays_in_error(self):
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        flow.action_start()
        flow.action_enroll([self.partner.id])
        trace = self.Trace.search([('step_id', '=', mail1.id)])
        with patch.object(type(self.env['mail.template']), 'send_mail_batch', side_effect=OSError("SMTP down")), \
                mute_logger('odoo.addons.mautomate_marketing.models.mautomate_flow_engine'):
            self.run_engine()
            self.assertEqual((trace.state, trace.attempts, trace.scheduled_at), ('scheduled', 1, self.start + timedelta(minutes=5)))
            self.assertIn("SMTP down", trace.error_message)
            self.run_engine(self.start + timedelta(minutes=5))
            self.assertEqual((trace.state, trace.attempts), ('scheduled', 2))
            self.run_engine(self.start + timedelta(minutes=35))
            self.assertEqual((trace.state, trace.attempts), ('error', 3))
        self.run_engine(self.start + timedelta(days=1))
        self.assertEqual(trace.state, 'error', "no more attempts")
        self.assertFalse(self.mails(mail1))

    def test_stop_cancels_pending_steps(self):
        flow = self.make_flow('form_submit')
        self.step(flow, 'mail1', delay=1)
        flow.action_start()
        flow.action_enroll([self.partner.id])
        flow.action_stop()
        self.assertEqual(flow.participant_ids.state, 'stopped')
        self.assertEqual(flow.participant_ids.trace_ids.skip_reason, 'flow_stopped')
        self.run_engine(self.start + timedelta(days=2))
        self.assertFalse(self.got(self.partner))

    def test_invalid_flows_are_refused(self):
        flow = self.make_flow('form_submit')
        with self.refused("choose its template"):
            self.Step.create({'flow_id': flow.id, 'name': 'No template', 'kind': 'email'})
        first = self.step(flow, 'mail1')
        second = self.step(flow, 'mail2a', parents=[first], delay=1)
        with self.refused("cannot loop"):
            first.parent_ids = second
        condition = self.step(flow, 'vip?', kind='condition', parents=[second])
        self.step(flow, 'mail2b', parents=[condition], branch='yes')
        with self.refused("\"no\" branch"):
            flow.action_start()
        self.step(flow, 'offer', parents=[condition], branch='no')
        flow.action_start()
        with self.refused("not valid"):
            flow.domain = "[('no_such_field', '=', 1)]"
        with self.refused("not valid"):
            self.step(flow, 'bad', kind='condition', condition_domain="[('email', '=')]")
        flow.action_enroll([self.partner.id])
        with self.refused("strand"):
            first.unlink()
        self.run_engine()
        self.assertEqual(second.trace_ids.state, 'scheduled', "the participant waits at the second step")
        with self.refused("strand"):
            second.unlink()


@tagged('post_install', '-at_install')
class TestFlowEngineConcurrency(FlowCase):
    """ Two engine runs on two real cursors at once share the due steps: none is run twice. """

    def test_two_engines_never_run_a_trace_twice(self):
        self.patch(Registry, '_lock', DummyRLock())
        leave_database_as_found(self)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            tag = env['res.partner.category'].create({'name': 'Flow concurrency'})
            partners = env['res.partner'].create([{'name': f'Parallel {i}', 'email': f'parallel{i}@example.com'}
                                                  for i in range(40)])
            flow = env['mautomate.flow'].create({'name': 'Concurrency', 'reentry': 'always'})
            env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'tag', 'kind': 'tags',
                                               'tag_add_ids': [(6, 0, tag.ids)]})
            flow.action_start()
            flow.action_enroll(partners.ids)
            ids = {'flow': flow.id, 'tag': tag.id, 'partners': partners.ids}
        self.addCleanup(self.delete_committed, ids)
        execute = MautomateFlowStep._flow_execute
        ran, errors = [], []
        barrier = threading.Barrier(2)

        def counting(step, traces, now):
            ran.extend(traces.ids)
            return execute(step, traces, now)

        def engine():
            try:
                barrier.wait(timeout=30)
                while True:
                    with self.registry.cursor() as cr:
                        env = api.Environment(cr, SUPERUSER_ID, {})
                        if not retrying(lambda env=env: env['mautomate.flow.engine']._process_batch(
                                fields.Datetime.now(), batch_size=5), env):
                            break
            except Exception as error:  # reported by the assertion below
                errors.append(error)

        with patch.object(MautomateFlowStep, '_flow_execute', counting):
            threads = [threading.Thread(target=engine) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        self.assertFalse(errors)
        self.assertEqual(len(ran), 40)
        self.assertEqual(len(set(ran)), 40, "no trace ran twice")
        with self.registry.cursor() as cr:
            cr.execute("SELECT state, count(*) FROM mautomate_flow_trace WHERE flow_id = %s GROUP BY state", [ids['flow']])
            self.assertEqual(dict(cr.fetchall()), {'done': 40})

    def delete_committed(self, ids):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM mautomate_flow WHERE id = %s", [ids['flow']])
            cr.execute("DELETE FROM mail_message WHERE model = 'res.partner' AND res_id = ANY(%s)", [ids['partners']])
            cr.execute("DELETE FROM res_partner WHERE id = ANY(%s)", [ids['partners']])
            cr.execute("DELETE FROM res_partner_category WHERE id = %s", [ids['tag']])
        self.registry.clear_cache()


@tagged('post_install', '-at_install', 'security')
class TestFlowAccess(FlowCase):
    """ Marketing users read flows, managers edit and run them, sales reps read who is in which flow. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env(context={**cls.env.context, 'no_reset_password': True})
        common.new_test_user(env, 'flow_marketing_user', groups='mautomate_marketing.group_mautomate_user')
        common.new_test_user(env, 'flow_marketing_manager', groups='mautomate_marketing.group_mautomate_manager')
        common.new_test_user(env, 'flow_salesman', groups='sales_team.group_sale_salesman')
        cls.flow = cls.env.ref('mautomate_marketing.mautomate_flow_demo_parcel_delivered')
        cls.flow.action_enroll([cls.partner.id])

    def open_form(self, record):
        """ What the web client does to show the record's form. """
        model = self.env[record._name]
        arch = model.get_views([(False, 'form')])['views']['form']['arch']
        top_level = [node.get('name') for node in etree.fromstring(arch).iter('field')
                     if not any(parent.tag == 'field' for parent in node.iterancestors())]
        return model.browse(record.id).web_read({name: {} for name in top_level})[0]

    @users('flow_marketing_user')
    def test_marketing_user_reads_flows(self):
        self.assertEqual(self.open_form(self.flow)['state'], 'running')
        self.open_form(self.flow.step_ids[0])
        self.open_form(self.flow.participant_ids)
        self.assertTrue(self.env['mautomate.flow.trace'].search([('flow_id', '=', self.flow.id)]))
        with self.assertRaises(AccessError):
            self.env['mautomate.flow'].browse(self.flow.id).action_pause()
        with self.assertRaises(AccessError):
            self.env['mautomate.flow'].browse(self.flow.id).action_enroll([self.bob.id])

    @users('flow_marketing_manager')
    def test_marketing_manager_runs_flows(self):
        flow = self.env['mautomate.flow'].browse(self.flow.id)
        flow.action_pause()
        self.assertEqual(flow.state, 'paused')
        flow.action_start()
        self.assertEqual(flow.state, 'running')
        self.open_form(flow)

    @users('flow_marketing_manager')
    def test_enrol_selected_contacts(self):
        """ From the contact list: Action ‣ Enrol in a Flow. """
        contacts = self.env['res.partner'].browse((self.partner | self.bob).ids)
        wizard = self.env['mautomate.flow.enroll'].with_context(active_model='res.partner', active_ids=contacts.ids).create(
            {'flow_id': self.flow.id})
        self.assertEqual(wizard.partner_ids, contacts)
        notification = wizard.action_enroll()
        self.assertIn("2 contacts enrolled", notification['params']['message'], "the demo flow takes contacts every time")
        self.assertEqual(self.env['mautomate.flow'].browse(self.flow.id).participant_ids.partner_id, contacts)
        self.env['mautomate.flow'].browse(self.flow.id).sudo().reentry = 'once'
        notification = wizard.action_enroll()
        self.assertIn("0 contacts enrolled", notification['params']['message'])
        self.assertIn("2 were not", notification['params']['message'])

    @users('flow_salesman')
    def test_salesman_reads_participants(self):
        participants = self.env['mautomate.flow.participant'].search([('partner_id', '=', self.partner.id)])
        self.assertEqual(participants.flow_id.name, self.flow.name, "which flow the contact is in")
        with self.assertRaises(AccessError):
            participants.flow_id.action_pause()
        with self.assertRaises(AccessError):
            self.env['mautomate.flow.trace'].search([])
