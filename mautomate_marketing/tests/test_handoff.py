from odoo.tests import common, tagged

from .common import MautomateCase
from .test_flows import FlowCase


class AssignmentMixin:
    """ Sales teams as crm's rule-based assignment reads them: team domains, members' domains and capacities. """

    @classmethod
    def setup_sales(cls):
        env = cls.env(context={**cls.env.context, 'no_reset_password': True, 'mail_create_nosubscribe': True})
        cls.sellers = {name: common.new_test_user(env, f'handoff_{name}', groups='sales_team.group_sale_salesman',
                                                  name=name.title())
                       for name in ('dane', 'busy', 'swede', 'yank', 'boss', 'out', 'full')}
        # Only these teams take automatic assignment: crm draws among the teams whose domain matches.
        cls.env['crm.team'].search([]).assignment_optout = True
        cls.nordics, cls.americas = cls.env['crm.team'].create([
            {'name': 'Handoff Nordics', 'user_id': cls.sellers['boss'].id,
             'assignment_domain': "[('country_id.code', 'in', ('SE', 'DK'))]"},
            {'name': 'Handoff Americas', 'assignment_domain': "[('country_id.code', '=', 'US')]"},
        ])
        cls.Member = cls.env['crm.team.member']
        cls.Member.create([
            {'crm_team_id': cls.nordics.id, 'user_id': cls.sellers['dane'].id,
             'assignment_domain': "[('country_id.code', '=', 'DK')]"},
            # 30 leads a month: 1 a day, which it already got.
            {'crm_team_id': cls.nordics.id, 'user_id': cls.sellers['busy'].id,
             'assignment_domain': "[('country_id.code', '=', 'SE')]"},
            # 90 a month: 3 a day, 2 of them given today, so more leads this month than the busy one.
            {'crm_team_id': cls.nordics.id, 'user_id': cls.sellers['swede'].id, 'assignment_max': 90,
             'assignment_domain': "[('country_id.code', '=', 'SE')]"},
            {'crm_team_id': cls.americas.id, 'user_id': cls.sellers['yank'].id},
        ])
        cls.env['crm.lead'].create(
            [{'name': 'Earlier today', 'team_id': cls.nordics.id, 'user_id': cls.sellers['busy'].id}]
            + [{'name': f'Earlier today {index}', 'team_id': cls.nordics.id, 'user_id': cls.sellers['swede'].id}
               for index in range(2)])
        cls.country = {code: cls.env.ref(f'base.{code.lower()}') for code in ('SE', 'DK', 'US', 'FR')}

    def new_leads(self, *codes, **vals):
        return self.env['crm.lead'].create([{'name': f'Lead {code}', 'type': 'lead', 'user_id': False,
                                             'country_id': self.country[code].id, **vals} for code in codes])


@tagged('post_install', '-at_install')
class TestHandoffAssignment(AssignmentMixin, MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_sales()
        cls.env['ir.config_parameter'].set_param('crm.lead.auto.assignment', True)

    def hot_activity(self, lead):
        return self.env['mail.activity'].search([
            ('res_model', '=', 'crm.lead'), ('res_id', '=', lead.id),
            ('activity_type_id', '=', self.env.ref('mautomate_marketing.mail_activity_type_hot_lead').id)])

    def test_handoff_assigns_as_crm(self):
        """ The team whose domain matches, its member whose domain matches with capacity left today; no team
        matching: the lead stays unassigned, as crm leaves it. """
        sweden, denmark, usa, france = self.new_leads('SE', 'DK', 'US', 'FR')
        (sweden | denmark | usa | france)._mautomate_hand_off()
        self.assertRecordValues(sweden | denmark | usa | france, [
            {'team_id': self.nordics.id, 'user_id': self.sellers['swede'].id},
            {'team_id': self.nordics.id, 'user_id': self.sellers['dane'].id},
            {'team_id': self.americas.id, 'user_id': self.sellers['yank'].id},
            {'team_id': False, 'user_id': False},
        ])
        self.assertEqual(self.hot_activity(sweden).user_id, self.sellers['swede'])
        self.assertFalse(self.hot_activity(france))
        self.assertIn('handed to sales', str(france.message_ids[0].body))
        # Once: a second hand-off changes nothing.
        (sweden | france)._mautomate_hand_off()
        self.assertEqual(len(self.hot_activity(sweden)), 1)
        self.assertFalse(france.team_id)

    def test_capacity_spent_leaves_the_lead_to_its_team(self):
        """ The Swedish members have 1 lead left today between them: the most probable lead gets it, the other
        stays in the team, unassigned, and its leader gets the Hot Lead activity. """
        likely, unlikely = self.new_leads('SE', 'SE')
        likely.probability, unlikely.probability = 80, 20
        (unlikely | likely)._mautomate_hand_off()
        self.assertRecordValues(likely | unlikely, [
            {'team_id': self.nordics.id, 'user_id': self.sellers['swede'].id},
            {'team_id': self.nordics.id, 'user_id': False},
        ])
        self.assertEqual(self.hot_activity(unlikely).user_id, self.sellers['boss'])

    def test_without_rule_based_assignment_the_lead_stays_unassigned(self):
        self.env['ir.config_parameter'].set_param('crm.lead.auto.assignment', False)
        sweden = self.new_leads('SE')
        sweden._mautomate_hand_off()
        self.assertRecordValues(sweden, [{'team_id': False, 'user_id': False}])
        self.assertTrue(sweden.mautomate_handoff_date)


@tagged('post_install', '-at_install')
class TestAssignStep(AssignmentMixin, FlowCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_sales()
        cls.team = cls.env['crm.team'].create({'name': 'Handoff Step Team'})
        cls.Member.create([
            {'crm_team_id': cls.team.id, 'user_id': cls.sellers['out'].id, 'assignment_optout': True},
            {'crm_team_id': cls.team.id, 'user_id': cls.sellers['dane'].id,
             'assignment_domain': "[('country_id.code', '=', 'DK')]"},
            {'crm_team_id': cls.team.id, 'user_id': cls.sellers['full'].id, 'assignment_max': 0},
            {'crm_team_id': cls.team.id, 'user_id': cls.sellers['swede'].id, 'assignment_max': 60},
            {'crm_team_id': cls.team.id, 'user_id': cls.sellers['yank'].id},
        ])

    def test_assign_step_uses_crm_assignment(self):
        """ Members who opted out, whose domain does not match or who have no capacity left get none; the others
        get their day's quota (2 and 1); the fourth lead stays in the team without salesperson. """
        partners = self.env['res.partner'].create([{'name': f'Step Buyer {index}', 'country_id': self.country['SE'].id}
                                                   for index in range(4)])
        leads = self.env['crm.lead'].create([{'name': f'Step lead {index}', 'partner_id': partner.id, 'user_id': False,
                                              'probability': 90 - index} for index, partner in enumerate(partners)])
        flow = self.make_flow()
        assign = self.step(flow, 'assign', kind='assign', crm_team_id=self.team.id)
        flow.action_start()
        flow.action_enroll(partners.ids)
        self.run_engine()
        self.assertEqual(set(self.Trace.search([('step_id', '=', assign.id)]).mapped('state')), {'done'})
        self.assertEqual(leads.team_id, self.team)
        self.assertEqual([lead.user_id.name for lead in leads[:3]], ['Swede', 'Yank', 'Swede'])
        self.assertFalse(leads[3].user_id)
