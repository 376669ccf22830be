import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.exceptions import ValidationError
from odoo.modules.registry import DummyRLock, Registry
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tests import tagged

from ..models.mautomate_flow_step import MautomateFlowStep
from .common import leave_database_as_found
from .test_flows import FlowCase, Killed


class EngineCase(FlowCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A Monday noon UTC: quiet hours depend on the time of day.
        cls.start = datetime(2026, 1, 5, 12, 0)
        for key in ('confirmation', 'directions', 'reminder', 'survey'):
            cls.templates[key] = cls.templates['mail1'].copy({'name': f'Flow test {key}', 'subject': f'Subject {key}',
                                                              'body_html': f'<p>Hello {key}</p>'})

    def set_policy(self, cap=0, quiet=None):
        params = self.env['ir.config_parameter'].sudo()
        params.set_param('mautomate_marketing.flow_mail_cap', cap)
        params.set_param('mautomate_marketing.quiet_hours', bool(quiet))
        if quiet:
            params.set_param('mautomate_marketing.quiet_hours_start', quiet[0])
            params.set_param('mautomate_marketing.quiet_hours_end', quiet[1])

    def mail_dates(self, partner):
        """ {step name: when its mail went} for the contact. """
        traces = self.Trace.search([('participant_id.partner_id', '=', partner.id), ('state', '=', 'done'),
                                    ('mail_mail_id', '!=', False)])
        return {trace.step_id.name: trace.done_at for trace in traces}

    def trace(self, step, partner):
        return self.Trace.search([('step_id', '=', step.id), ('participant_id.partner_id', '=', partner.id)])


@tagged('post_install', '-at_install')
class TestFlowSendingPolicy(EngineCase):
    """ The frequency cap and quiet hours defer automated mail (never drop it); opted-out contacts get none. """

    def test_settings(self):
        """ The Settings page stores the policy the engine reads; midnight is an hour like any other. """
        self.assertEqual(self.Engine._get_sending_policy(), (0, None), "no limit by default")
        self.env['res.config.settings'].create({'mautomate_flow_mail_cap': 3, 'mautomate_quiet_hours': True,
                                                'mautomate_quiet_hours_start': '0', 'mautomate_quiet_hours_end': '6'}).execute()
        self.assertEqual(self.Engine._get_sending_policy(), (3, (0, 6)))
        settings = self.env['res.config.settings'].create({})
        self.assertEqual((settings.mautomate_flow_mail_cap, settings.mautomate_quiet_hours_start), (3, '0'))
        with self.assertRaises(ValidationError):
            self.env['res.config.settings'].create({'mautomate_flow_mail_cap': -1})

    def test_frequency_cap_defers_until_the_cap_frees(self):
        """ At most 2 automated mails per contact per 7 days, over all flows. """
        self.set_policy(cap=2)
        flow_a = self.make_flow('form_submit', name='Flow A')
        mail1 = self.step(flow_a, 'mail1')
        mail2a = self.step(flow_a, 'mail2a', parents=[mail1], delay=1)
        flow_b = self.make_flow('download', name='Flow B')
        thanks = self.step(flow_b, 'thanks')
        tips = self.step(flow_b, 'tips', parents=[thanks], delay=2)
        (flow_a | flow_b).action_start()
        flow_a.action_enroll([self.partner.id, self.bob.id])
        flow_b.action_enroll([self.partner.id])
        day = timedelta(days=1)
        for days in (0, 1, 2, 6):
            self.run_engine(self.start + days * day)
        self.assertEqual(self.mail_dates(self.partner), {'mail1': self.start, 'thanks': self.start},
                         "two mails on day 0: the cap is reached")
        self.assertEqual(self.mail_dates(self.bob), {'mail1': self.start, 'mail2a': self.start + day},
                         "another contact's mails do not count")
        for step in (mail2a, tips):
            trace = self.trace(step, self.partner)
            self.assertEqual((trace.state, trace.scheduled_at, trace.deferred_count, trace.defer_reason),
                             ('scheduled', self.start + 7 * day, 1, 'frequency_cap'),
                             "deferred to when the mails of day 0 leave the 7 days")
        self.run_engine(self.start + 7 * day)
        self.assertEqual(self.mail_dates(self.partner), {'mail1': self.start, 'thanks': self.start,
                                                         'mail2a': self.start + 7 * day, 'tips': self.start + 7 * day})
        self.assertEqual(len(self.mails(mail2a, self.partner)), 1)
        self.assertEqual(set((flow_a | flow_b).participant_ids.mapped('state')), {'completed'})

    def test_cap_counts_mails_of_one_batch(self):
        """ Three flows mail a contact in one batch: the third mail waits a week. """
        self.set_policy(cap=2)
        flows = self.Flow
        for key in ('thanks', 'tips', 'offer'):
            flow = self.make_flow('form_submit', name=key)
            self.step(flow, key)
            flows |= flow
        flows.action_start()
        self.ingest(event_type='form_submit', partner_id=self.partner.id)
        self.run_engine()
        self.assertEqual(len(self.mail_dates(self.partner)), 2)
        deferred = self.Trace.search([('flow_id', 'in', flows.ids), ('state', '=', 'scheduled')])
        self.assertEqual((deferred.scheduled_at, deferred.defer_reason), (self.start + timedelta(days=7), 'frequency_cap'))
        self.run_engine(self.start + timedelta(days=7))
        self.assertEqual(len(self.mail_dates(self.partner)), 3)

    def test_quiet_hours_defer_to_their_end_in_the_contact_time_zone(self):
        """ No automated mail from 21:00 to 08:00 in the contact's time zone, else the company's. """
        self.set_policy(quiet=(21, 8))
        self.env.company.partner_id.tz = 'Asia/Tokyo'
        self.partner.tz = 'Europe/Brussels'  # 13:00 there: mailed at once
        early = self.env['res.partner'].create({'name': 'Early Bird', 'email': 'early@example.com', 'tz': 'America/New_York'})
        late = self.env['res.partner'].create({'name': 'Night Owl', 'email': 'owl@example.com', 'tz': False})
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        tag = self.step(flow, 'tag', kind='tags', parents=[mail1], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        flow.action_start()
        flow.action_enroll([self.partner.id, early.id, late.id])
        self.run_engine()
        self.assertEqual(self.mail_dates(self.partner), {'mail1': self.start})
        # 07:00 in New York: its quiet hours end at 08:00 there, 13:00 UTC.
        trace = self.trace(mail1, early)
        self.assertEqual((trace.state, trace.scheduled_at, trace.defer_reason), ('scheduled', self.start + timedelta(hours=1),
                                                                                 'quiet_hours'))
        # No time zone: the company's, 21:00 in Tokyo; quiet until 08:00 the next day there, 23:00 UTC today.
        self.assertEqual(self.trace(mail1, late).scheduled_at, self.start + timedelta(hours=11))
        self.assertFalse(self.trace(tag, early), "the next step waits for the deferred mail")
        self.run_engine(self.start + timedelta(minutes=59))
        self.assertFalse(self.mails(mail1, early))
        self.run_engine(self.start + timedelta(hours=1))
        self.assertEqual(self.mail_dates(early), {'mail1': self.start + timedelta(hours=1)})
        self.assertEqual(self.trace(tag, early).state, 'done')
        self.assertFalse(self.mails(mail1, late))
        self.run_engine(self.start + timedelta(hours=11))
        self.assertEqual(self.mail_dates(late), {'mail1': self.start + timedelta(hours=11)})
        self.assertEqual(self.trace(mail1, late).deferred_count, 1)
        self.assertFalse(self.trace(mail1, self.partner).deferred_count)
        self.assertEqual(set(flow.participant_ids.mapped('state')), {'completed'})

    def test_quiet_hours_then_cap(self):
        """ A mail deferred by the cap to a time in quiet hours waits again, for their end. """
        self.set_policy(cap=1, quiet=(21, 8))
        self.env.company.partner_id.tz = 'UTC'
        self.partner.tz = 'UTC'
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1', delay=10, unit='hours')  # 22:00: quiet
        mail2a = self.step(flow, 'mail2a', parents=[mail1], delay=1, unit='hours')
        flow.action_start()
        flow.action_enroll([self.partner.id])
        self.run_engine(self.start + timedelta(hours=10))
        next_morning = self.start + timedelta(hours=20)
        self.assertEqual(self.trace(mail1, self.partner).scheduled_at, next_morning)
        self.run_engine(next_morning)
        self.run_engine(next_morning + timedelta(hours=1))
        trace = self.trace(mail2a, self.partner)
        self.assertEqual((trace.scheduled_at, trace.defer_reason), (next_morning + timedelta(days=7), 'frequency_cap'))
        # A week later at 08:00 it goes (its quiet hours ended then).
        self.run_engine(next_morning + timedelta(days=7))
        self.assertEqual(self.mail_dates(self.partner), {'mail1': next_morning, 'mail2a': next_morning + timedelta(days=7)})

    def test_opted_out_of_a_mailing_list_gets_no_mail(self):
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        flow.action_start()
        newsletter = self.env['mailing.list'].create({'name': 'Flow newsletter'})
        self.env['mailing.contact'].create([
            {'name': 'Bob', 'email': 'BOB@buyer.example.com', 'subscription_ids': [(0, 0, {'list_id': newsletter.id})]},
            {'name': 'Ann', 'email': 'ann@prospect.example.com', 'subscription_ids': [(0, 0, {'list_id': newsletter.id})]},
        ])
        newsletter.subscription_ids.filtered(lambda sub: sub.contact_id.name == 'Bob').opt_out = True
        flow.action_enroll([self.partner.id, self.bob.id])
        self.run_engine()
        self.assertEqual(self.mails(mail1).mapped('res_id'), [self.partner.id], "subscribed: mailed")
        self.assertEqual(self.trace(mail1, self.bob).skip_reason, 'opted_out')


@tagged('post_install', '-at_install')
class TestFlowEngineCron(EngineCase):

    def test_one_bounded_batch_per_call_with_progress(self):
        """ Odoo's cron calls the engine again while it reports work remaining; it wakes itself for later steps. """
        flow = self.make_flow('form_submit')
        tag = self.step(flow, 'tag', kind='tags', tag_add_ids=[(6, 0, self.tag_vip.ids)])
        self.step(flow, 'mail1', parents=[tag], delay=2)
        flow.action_start()
        partners = self.env['res.partner'].create([{'name': f'Batch {i}', 'email': f'batch{i}@example.com'} for i in range(5)])
        flow.action_enroll(partners.ids)
        cron = self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_engine')
        progress = []

        def notify_progress(crons, *, done, remaining, deactivate=False):
            progress.append((done, remaining))

        with patch.object(type(self.env['ir.cron']), '_notify_progress', notify_progress):
            self.env['ir.cron.trigger'].search([('cron_id', '=', cron.id)]).unlink()
            calls = []
            while done := self.Engine._cron_process(batch_size=2):
                calls.append(done)
                self.env.invalidate_all()
                self.assertEqual(self.Trace.search_count([('flow_id', '=', flow.id), ('step_id', '=', tag.id),
                                                          ('state', '=', 'done')]), sum(calls))
        self.assertEqual(calls, [2, 2, 1])
        self.assertEqual(progress, [(2, 3), (2, 1), (1, 0), (0, 0)])
        self.assertEqual(partners.category_id, self.tag_vip)
        self.assertEqual(set(self.env['ir.cron.trigger'].search([('cron_id', '=', cron.id)]).mapped('call_at')),
                         {self.start + timedelta(days=2)}, "woken when the mails are due")

    def test_event_booking_series(self):
        """ Event booking: confirmation now, directions the day before, a reminder the same morning (after quiet
        hours), a survey after; a contact who cancels gets nothing after the confirmation. The event is on day 5
        at 14:00; bookings come on day 0 at 12:00. """
        self.set_policy(quiet=(21, 8))
        self.env.company.partner_id.tz = 'UTC'
        cancelled = self.env['res.partner.category'].create({'name': 'Booking cancelled'})
        flow = self.make_flow('custom', name_pattern='Booked*')
        confirmation = self.step(flow, 'confirmation')
        booked = self.step(flow, 'still booked?', kind='condition', parents=[confirmation], delay=4,
                           condition_domain=repr([('category_id', 'not in', cancelled.ids)]))
        directions = self.step(flow, 'directions', parents=[booked], branch='yes')
        self.step(flow, 'exit', kind='exit', parents=[booked], branch='no')
        reminder = self.step(flow, 'reminder', parents=[directions], delay=18, unit='hours')  # 06:00: quiet until 08:00
        survey = self.step(flow, 'survey', parents=[reminder], delay=1, unit='days')
        flow.action_start()
        carl = self.env['res.partner'].create({'name': 'Carl Cancel', 'email': 'carl@example.com', 'tz': 'UTC'})
        (self.partner | self.bob).tz = 'UTC'
        for partner in (self.partner, self.bob, carl):
            self.ingest(event_type='custom', source='api', name='Booked: Garden Day', partner_id=partner.id)
        self.assertEqual(len(flow.participant_ids), 3)
        day = timedelta(days=1)
        self.run_engine()
        carl.category_id = cancelled
        for at in (self.start + 4 * day, self.start + 4 * day + timedelta(hours=18), self.start + 5 * day - timedelta(hours=4),
                   self.start + 6 * day - timedelta(hours=4)):
            self.run_engine(at)
        expected = {'confirmation': self.start, 'directions': self.start + 4 * day,
                    'reminder': self.start + 5 * day - timedelta(hours=4), 'survey': self.start + 6 * day - timedelta(hours=4)}
        self.assertEqual(self.mail_dates(self.partner), expected)
        self.assertEqual(self.mail_dates(self.bob), expected)
        self.assertEqual(self.trace(reminder, self.bob).defer_reason, 'quiet_hours')
        self.assertEqual(self.mail_dates(carl), {'confirmation': self.start}, "cancelled: no directions, reminder or survey")
        self.assertEqual(flow.participant_ids.filtered(lambda participant: participant.partner_id == carl).state, 'exited')
        self.assertEqual(self.mails(survey).mapped('subject'), ['Subject survey'] * 2)


@tagged('post_install', '-at_install')
class TestFlowEditGuard(EngineCase):
    """ Editing a flow that participants go through: refused where it would strand them. """

    def test_edits_that_strand_participants_are_refused(self):
        flow, mail1, opened, mail2a, mail2b = self.welcome_flow()
        flow.action_start()
        flow.action_enroll([self.partner.id])
        self.run_engine()
        self.assertEqual(self.trace(opened, self.partner).state, 'scheduled', "the participant is at the condition")
        with self.refused('"Yes" branch must keep a next step'):
            mail2a.unlink()
        with self.refused('"No" branch must keep a next step'):
            mail2b.branch = 'yes'
        with self.refused('"No" branch'):
            mail2b.parent_ids = mail1
        with self.refused('"Yes" branch'):
            opened.child_ids = mail2b
        with self.refused("cannot change its kind"):
            opened.kind = 'exit'
        flow.action_pause()
        with self.refused('"Yes" branch'):
            mail2a.unlink()
        # Another step on the branch first: then the old one may go.
        offer = self.step(flow, 'offer', parents=[opened], branch='yes')
        mail2a.unlink()
        # Edits that keep every branch going are free: a new step, a delay, a template.
        mail2b.write({'delay': 1, 'mail_template_id': self.templates['tips'].id})
        self.step(flow, 'thanks', parents=[offer])
        # Steps no one is at change freely.
        offer.kind = 'score'
        flow.action_start()
        self.run_engine(self.start + timedelta(days=3))
        self.assertEqual(self.got(self.partner), ['mail1', 'opened?'])
        self.run_engine(self.start + timedelta(days=4))
        self.assertEqual(self.got(self.partner), ['mail1', 'opened?', 'mail2b'])
        # No one waits anymore: the flow's steps change freely.
        mail2b.unlink()
        opened.kind = 'exit'

    def test_last_next_step_of_a_plain_step(self):
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1', delay=1)
        tips = self.step(flow, 'tips', parents=[mail1])
        flow.action_start()
        flow.action_enroll([self.partner.id])
        with self.refused('"Always" branch must keep a next step'):
            tips.unlink()
        with self.refused('"Always" branch'):
            tips.parent_ids = False
        self.step(flow, 'offer', parents=[mail1])
        tips.unlink()


@tagged('post_install', '-at_install')
class TestFlowTestRun(EngineCase):
    """ Test on one contact: the flow runs at once, with delays skipped, and nothing is kept nor sent. """

    def test_test_run_shows_what_would_happen_and_keeps_nothing(self):
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)
        self.set_policy(quiet=(21, 8))
        self.env.company.partner_id.tz = 'UTC'
        flow = self.make_flow('form_submit')
        mail1 = self.step(flow, 'mail1')
        opened = self.step(flow, 'opened?', kind='condition', parents=[mail1], delay=3, condition_type='event',
                           condition_event_type='email_open', condition_step_id=mail1.id)
        self.step(flow, 'mail2a', parents=[opened], branch='yes')
        mail2b = self.step(flow, 'mail2b', parents=[opened], branch='no', delay=10, unit='hours')  # 22:00: quiet till 08:00
        tag = self.step(flow, 'tag', kind='tags', parents=[mail2b], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        self.assertEqual(flow.state, 'draft', "a flow is tested before it starts")
        arch = self.Flow.get_views([(False, 'form')])['views']['form']['arch']
        action = self.env.ref('mautomate_marketing.mautomate_flow_test_action')
        self.assertIn(f'name="{action.id}"', arch, "the flow form's Test button opens the test")
        mails_before = self.env['mail.mail'].search_count([])
        wizard = self.env['mautomate.flow.test'].with_context(default_flow_id=flow.id).create({'partner_id': self.partner.id})
        action = wizard.action_run()
        self.assertEqual((action['res_model'], action['res_id']), ('mautomate.flow.test', wizard.id))
        lines = [(line.step_id.name, line.after, line.state, line.outcome) for line in wizard.line_ids]
        self.assertEqual(lines, [('mail1', 'at once', 'done', False), ('opened?', '3 d', 'done', 'no'),
                                 ('mail2b', '3 d 20 h', 'done', False), ('tag', '3 d 20 h', 'done', False)])
        mail_line = wizard.line_ids.filtered(lambda line: line.step_id == mail2b)
        self.assertEqual((mail_line.subject, mail_line.email_to, mail_line.defer_reason),
                         ('Subject mail2b', '"Ann Prospect" <ann@prospect.example.com>', 'quiet_hours'))
        self.assertIn('Hello mail2b', mail_line.body_html)
        self.assertEqual((wizard.end_state, wizard.mail_count), ('completed', 2))
        # Nothing kept: no participant, mail, mailing, tag or trace; the test does not count.
        self.env.invalidate_all()
        self.assertFalse(flow.participant_ids)
        self.assertFalse(self.Trace.search([('flow_id', '=', flow.id)]))
        self.assertEqual(self.env['mail.mail'].search_count([]), mails_before)
        self.assertFalse(self.env['mailing.trace'].search([('mass_mailing_id', '=', mail1.mailing_id.id)]))
        self.assertFalse(self.partner.category_id)
        self.assertEqual((flow.participant_count, tag.done_count), (0, 0))
        # A flow that could not start cannot be tested, with the same message.
        self.step(flow, 'vip?', kind='condition', parents=[tag])
        with self.refused('"yes" branch'):
            wizard.action_run()
        flow.step_ids.filtered(lambda step: step.name == 'vip?').unlink()
        # Run again for another contact, blacklisted: the mails are skipped.
        self.env['mail.blacklist']._add(self.bob.email)
        wizard.partner_id = self.bob
        wizard.action_run()
        self.assertEqual(wizard.line_ids.filtered(lambda line: line.step_id == mail1).skip_reason, 'blacklisted')
        self.assertEqual(wizard.mail_count, 0)


class CommittedCase(EngineCase):
    """ Runs of the engine on cursors of their own, committed as the cron does: data is committed and removed. """

    def setUp(self):
        super().setUp()
        self.patch(Registry, '_lock', DummyRLock())
        leave_database_as_found(self)

    @contextmanager
    def committed(self):
        with self.registry.cursor() as cr:
            yield api.Environment(cr, SUPERUSER_ID, {})

    def commit_flow(self, count):
        """ A running flow (a mail, then a tag) and `count` contacts enrolled in it, committed. """
        with self.committed() as env:
            template = env['mail.template'].create({
                'name': 'Committed flow', 'model_id': env['ir.model']._get_id('res.partner'), 'subject': 'Committed',
                'email_to': '{{ object.email_formatted }}', 'body_html': '<p>Once</p>'})
            tag = env['res.partner.category'].create({'name': 'Flow committed'})
            partners = env['res.partner'].create([{'name': f'Committed {i}', 'email': f'committed{i}@example.com'}
                                                  for i in range(count)])
            flow = env['mautomate.flow'].create({'name': 'Committed', 'reentry': 'always'})
            mail = env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'mail', 'mail_template_id': template.id})
            env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'tag', 'kind': 'tags', 'parent_ids': mail.ids,
                                               'tag_add_ids': [(6, 0, tag.ids)]})
            flow.action_start()
            flow.action_enroll(partners.ids)
            ids = {'flow': flow.id, 'step': mail.id, 'tag': tag.id, 'template': template.id, 'partners': partners.ids}
        self.addCleanup(self.delete_committed, ids)
        return ids

    def delete_committed(self, ids):
        with self.registry.cursor() as cr:
            cr.execute("SELECT m.id, m.source_id FROM mailing_mailing m JOIN mautomate_flow_step s ON s.mailing_id = m.id "
                       "WHERE s.id = %s", [ids['step']])
            mailing_id, source_id = cr.fetchone() or (None, None)
            cr.execute("DELETE FROM mailing_trace WHERE mass_mailing_id = %s", [mailing_id])
            cr.execute("DELETE FROM mail_mail WHERE mailing_id = %s RETURNING mail_message_id", [mailing_id])
            message_ids = [row[0] for row in cr.fetchall()]
            cr.execute("DELETE FROM mail_message WHERE id = ANY(%s) OR (model = 'res.partner' AND res_id = ANY(%s)) "
                       "OR (model = 'mailing.mailing' AND res_id = %s)", [message_ids, ids['partners'], mailing_id])
            cr.execute("DELETE FROM mautomate_flow WHERE id = %s", [ids['flow']])
            cr.execute("DELETE FROM mailing_mailing WHERE id = %s", [mailing_id])
            cr.execute("DELETE FROM utm_source WHERE id = %s", [source_id])
            cr.execute("DELETE FROM res_partner WHERE id = ANY(%s)", [ids['partners']])
            cr.execute("DELETE FROM res_partner_category WHERE id = %s", [ids['tag']])
            cr.execute("DELETE FROM mail_template WHERE id = %s", [ids['template']])
        self.registry.clear_cache()

    def sent(self, ids):
        """ {contact id: how many mails it got from the flow}, and how many tag steps were done, as committed. """
        with self.committed() as env:
            env.cr.execute("""
                SELECT msg.res_id, count(*) FROM mail_mail m JOIN mail_message msg ON msg.id = m.mail_message_id
                  JOIN mautomate_flow_step s ON s.mailing_id = m.mailing_id
                 WHERE s.id = %s GROUP BY msg.res_id""", [ids['step']])
            mails = dict(env.cr.fetchall())
            env.cr.execute("""SELECT count(*) FROM mautomate_flow_trace t JOIN mautomate_flow_step s ON s.id = t.step_id
                               WHERE t.flow_id = %s AND s.kind = 'tags' AND t.state = 'done'""", [ids['flow']])
            return mails, env.cr.fetchone()[0]

    def run_cron(self, batch_size):
        """ What Odoo's cron does: a batch per call, each in a transaction committed at its end, until none is done. """
        while True:
            with self.committed() as env:
                if not env['mautomate.flow.engine']._cron_process(batch_size=batch_size):
                    return


@tagged('post_install', '-at_install')
class TestFlowEngineKill(CommittedCase):

    def test_killed_mid_run_then_run_again_sends_once(self):
        """ Killed in its third batch, after that batch sent a mail: the committed batches are kept, the killed one
        is rolled back whole; run again, every contact gets the mail exactly once and the next step once. """
        ids = self.commit_flow(7)
        execute = MautomateFlowStep._flow_execute
        batches = []

        def killed_in_the_third_batch(step, traces, now):
            result = execute(step, traces, now)
            batches.append((step.kind, len(traces)))
            if step.kind == 'tags':
                raise Killed()
            return result

        with patch.object(MautomateFlowStep, '_flow_execute', killed_in_the_third_batch), self.assertRaises(Killed):
            self.run_cron(batch_size=3)
        self.assertEqual(batches, [('email', 3), ('email', 3), ('email', 1), ('tags', 2)],
                         "the third batch sent the last mail, then was killed in its tag step")
        mails, tags = self.sent(ids)
        self.assertEqual((sorted(mails.values()), tags), ([1] * 6, 0), "two batches committed, the third rolled back")
        self.run_cron(batch_size=3)
        mails, tags = self.sent(ids)
        self.assertEqual(mails, dict.fromkeys(ids['partners'], 1), "each contact got its mail once")
        self.assertEqual(tags, 7)
        with self.committed() as env:
            env.cr.execute("SELECT count(*) FROM mailing_trace t JOIN mautomate_flow_step s ON s.mailing_id = t.mass_mailing_id "
                           "WHERE s.id = %s", [ids['step']])
            self.assertEqual(env.cr.fetchone()[0], 7)
            env.cr.execute("SELECT DISTINCT state FROM mautomate_flow_participant WHERE flow_id = %s", [ids['flow']])
            self.assertEqual(env.cr.fetchall(), [('completed',)])


@tagged('post_install', '-at_install')
class TestFlowEngineParallel(CommittedCase):

    def test_two_crons_at_once_send_each_mail_once(self):
        """ Two cron workers on two cursors run together (a barrier starts them): they share the due steps,
        none is run twice. """
        ids = self.commit_flow(30)
        execute = MautomateFlowStep._flow_execute
        ran, errors = [], []
        barrier = threading.Barrier(2)
        local = threading.local()

        def counting(step, traces, now):
            local.batch.extend(traces.ids)
            return execute(step, traces, now)

        def worker():
            try:
                barrier.wait(timeout=30)
                for _round in range(100):
                    local.batch = []
                    try:
                        with self.committed() as env:
                            done = env['mautomate.flow.engine']._cron_process(batch_size=4)
                            env.cr.execute("SELECT count(*) FROM mautomate_flow_trace WHERE flow_id = %s AND state = 'scheduled'",
                                           [ids['flow']])
                            remaining = env.cr.fetchone()[0]
                    except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
                        continue  # rolled back: as a cron run, taken again by the next one
                    ran.extend(local.batch)  # committed
                    if not done and not remaining:
                        return
            except Exception as error:  # reported by the assertion below
                errors.append(error)

        with patch.object(MautomateFlowStep, '_flow_execute', counting):
            threads = [threading.Thread(target=worker) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        self.assertFalse(errors)
        self.assertEqual(len(ran), 60, "30 mails and 30 tags")
        self.assertEqual(len(set(ran)), 60, "no trace ran twice")
        mails, tags = self.sent(ids)
        self.assertEqual((mails, tags), (dict.fromkeys(ids['partners'], 1), 30))
