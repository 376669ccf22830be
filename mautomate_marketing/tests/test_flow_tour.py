from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import common, tagged

from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestFlowTour(MautomateHttpCase):

    def test_marketer_builds_starts_and_follows_a_flow(self):
        common.new_test_user(self.env, 'mau_tour_marketer', groups='mautomate_marketing.group_mautomate_manager',
                             name='Mia Marketer')
        Template = self.env['mail.template']
        for name in ('Tour welcome', 'Tour reminder'):
            Template.create({'name': name, 'model_id': self.env['ir.model']._get_id('res.partner'), 'subject': name,
                             'email_from': 'shop@example.com', 'email_to': '{{ object.email_formatted }}',
                             'body_html': f'<p>{name}</p>'})
        tina = self.env['res.partner'].create({'name': 'Tina Tour', 'email': 'tina@tour.example.com'})

        self.start_tour('/odoo/action-mautomate_marketing.mautomate_flow_action', 'mautomate_flow_build',
                        login='mau_tour_marketer')
        flow = self.env['mautomate.flow'].search([('name', '=', 'Tour welcome flow')])
        self.assertEqual(flow.state, 'running')
        self.assertRecordValues(flow.trigger_ids, [{'trigger_type': 'event', 'event_type': 'form_submit'}])
        steps = {step.name: step for step in flow.step_ids}
        mail, condition = steps['Welcome mail'], steps['Opened the welcome mail?']
        self.assertRecordValues(condition, [{'kind': 'condition', 'condition_type': 'event', 'delay': 2,
                                             'delay_unit': 'days', 'condition_event_type': 'email_open',
                                             'condition_step_id': mail.id, 'parent_ids': mail.ids}])
        self.assertRecordValues(steps['Engaged: points'] + steps['Reminder'], [
            {'kind': 'score', 'branch': 'yes', 'parent_ids': condition.ids, 'score_points': 10},
            {'kind': 'email', 'branch': 'no', 'parent_ids': condition.ids, 'score_points': 0},
        ])
        self.assertEqual(flow.participant_ids.partner_id, tina)

        # What the cron does: the mail now; Tina opens it; two days later, the condition and its yes branch.
        engine = self.env['mautomate.flow.engine']
        engine._cron_process()
        trace = flow.participant_ids.trace_ids.filtered(lambda trace: trace.step_id == mail)
        self.assertEqual(trace.state, 'done')
        trace.mail_mail_id.mailing_trace_ids.set_opened()
        with freeze_time(fields.Datetime.now() + timedelta(days=2, minutes=1)):
            while engine._cron_process():
                pass
        self.env.invalidate_all()
        traces = flow.participant_ids.trace_ids
        self.assertEqual({trace.step_id.name: (trace.state, trace.outcome) for trace in traces}, {
            'Welcome mail': ('done', 'always'),
            'Opened the welcome mail?': ('done', 'yes'),
            'Engaged: points': ('done', 'always'),
        })

        self.start_tour(f'/odoo/action-mautomate_marketing.mautomate_flow_action/{flow.id}', 'mautomate_flow_figures',
                        login='mau_tour_marketer')
