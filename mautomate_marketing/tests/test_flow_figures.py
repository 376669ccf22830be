from datetime import timedelta

from lxml import etree

from odoo.tests import common, tagged

from .test_flows import FlowCase


@tagged('post_install', '-at_install')
class TestFlowFigures(FlowCase):
    """ The figures marketers read on a flow and its steps. """

    def test_step_and_flow_figures(self):
        Partner = self.env['res.partner']
        carl, dora = Partner.create([{'name': 'Carl Blocked', 'email': 'carl@blocked.example.com'},
                                     {'name': 'Dora Blocked', 'email': 'dora@blocked.example.com'}])
        eve = Partner.create({'name': 'Eve Nomail'})
        flow = self.make_flow('form_submit', goal_domain=f"[('category_id', 'in', [{self.tag_vip.id}])]", kpi_target=4)
        mail1 = self.step(flow, 'mail1')
        tips = self.step(flow, 'tips', parents=[mail1], delay=2)
        flow.action_start()
        for partner in (self.partner, self.bob, eve):
            self.ingest(event_type='form_submit', partner_id=partner.id)
        # The events of blacklisted contacts are dropped: these two were enrolled by hand, then blacklisted.
        flow.action_enroll((carl | dora).ids)
        self.env['mail.blacklist']._add(carl.email)
        self.env['mail.blacklist']._add(dora.email)
        self.run_engine()
        self.assertRecordValues(mail1, [{'done_count': 2, 'skipped_count': 3, 'waiting_count': 0, 'error_count': 0,
                                         'skipped_reasons': "2 Blacklisted, 1 No E-mail Address",
                                         'opened_count': 0, 'clicked_count': 0}])
        self.assertRecordValues(tips, [{'waiting_count': 5, 'done_count': 0, 'skipped_reasons': ''}])
        # Ann opens her mail, Bob clicks in his (a click opens the mail too): the mailing's own statistics.
        self.mails(mail1, self.partner).mailing_trace_ids.set_opened()
        self.mails(mail1, self.bob).mailing_trace_ids.set_opened().set_clicked()
        # Ann reaches the goal: she converts before the tips.
        self.partner.category_id = self.tag_vip
        self.run_engine(self.start + timedelta(days=2))
        self.assertRecordValues(mail1, [{'opened_count': 2, 'clicked_count': 1}])
        # Skipped contacts go on (the tips skip them too); Ann converts before the tips.
        self.assertRecordValues(tips, [{'waiting_count': 0, 'done_count': 1, 'skipped_count': 4,
                                        'skipped_reasons': "2 Blacklisted, 1 Goal Reached, 1 No E-mail Address"}])
        self.assertEqual(flow.participant_ids.filtered(lambda p: p.partner_id == self.partner).state, 'converted')
        self.assertRecordValues(flow, [{'participant_count': 5, 'converted_count': 1, 'conversion_rate': 20.0,
                                        'trace_count': 10}])
        self.assertEqual(self.Trace.search([('step_id', '=', tips.id), ('skip_reason', '=', 'goal')]).partner_id,
                         self.partner)

    def test_step_figures_are_set_based(self):
        """ Reading the figures of many steps costs the same queries as reading those of one. """
        flows = self.Flow.create([{'name': f'Flow {i}'} for i in range(4)])
        steps = self.Step.create([{'flow_id': flow.id, 'name': f'mail {i}', 'kind': 'email',
                                   'mail_template_id': self.templates['mail1'].id}
                                  for flow in flows for i in range(3)])
        for step in steps:  # as after their first mails: each step's mailing holds its opens and clicks
            step.mailing_id = self.env['mailing.mailing'].create({
                'subject': step.name, 'mailing_model_id': self.env['ir.model']._get_id('res.partner')})
        fields = ['waiting_count', 'done_count', 'skipped_count', 'skipped_reasons', 'error_count', 'opened_count',
                  'clicked_count']

        def queries(records):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            records.read(fields)
            return self.env.cr.sql_log_count - before

        self.assertEqual(queries(steps), queries(steps[:1]))

    def test_sales_rep_opens_a_participation(self):
        """ Sales reps see who is in which flow, without the traces they may not read. """
        rep = common.new_test_user(self.env, 'flow_figures_rep', groups='sales_team.group_sale_salesman')
        flow = self.make_flow()
        self.step(flow, 'mail1')
        flow.action_start()
        participant = flow.action_enroll([self.partner.id]).with_user(rep)
        Participant = self.env['mautomate.flow.participant'].with_user(rep)
        arch = Participant.get_views([(False, 'form')])['views']['form']['arch']
        names = [node.get('name') for node in etree.fromstring(arch).iter('field')
                 if not any(parent.tag == 'field' for parent in node.iterancestors())]
        self.assertNotIn('trace_ids', names)
        self.assertEqual(participant.web_read({name: {} for name in names})[0]['state'], 'running')
