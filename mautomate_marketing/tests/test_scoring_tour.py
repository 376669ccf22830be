from datetime import timedelta

from odoo import fields
from odoo.tests import common, tagged

from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestScoringTour(MautomateHttpCase):

    def test_sales_rep_reads_grades_and_why(self):
        rep = common.new_test_user(self.env, 'mau_tour_rep', groups='sales_team.group_sale_salesman', name='Rita Rep')
        self.env['mautomate.score.rule'].search([]).action_archive()
        Rule = self.env['mautomate.score.rule']
        Rule.create({'name': 'Nordic', 'rule_type': 'fit', 'points': 70, 'domain': "[('country_id.code', '=', 'SE')]"})
        Rule.create({'name': 'Booked a demo', 'rule_type': 'behaviour', 'points': 30, 'event_type': 'cta_click'})
        Rule.create({'name': 'Visited pricing', 'rule_type': 'behaviour', 'points': 15, 'event_type': 'page_view',
                     'url_pattern': '/pricing*'})
        self.env['mautomate.scoring']._cron_recompute()
        Partner = self.env['res.partner']
        hot = Partner.create({'name': 'Hanna Hot', 'email': 'hanna@hot.example.com', 'country_id': self.env.ref('base.se').id})
        cold = Partner.create({'name': 'Carl Cold', 'email': 'carl@cold.example.com'})
        Lead = self.env['crm.lead']
        Lead.create([{'name': 'Hot prospect', 'partner_id': hot.id, 'user_id': rep.id, 'type': 'opportunity'},
                     {'name': 'Cold prospect', 'partner_id': cold.id, 'user_id': rep.id, 'type': 'opportunity'}])
        now = fields.Datetime.now()
        self.env['mautomate.event']._ingest(
            [{'event_type': 'cta_click', 'name': 'Book a demo', 'partner_id': hot.id, 'occurred_at': now - timedelta(hours=3)}] * 2
            + [{'event_type': 'page_view', 'name': 'Pricing', 'url': 'https://www.example.com/pricing', 'partner_id': hot.id,
                'occurred_at': now - timedelta(hours=hours)} for hours in (1, 2, 4)]
            + [{'event_type': 'page_view', 'name': 'Home', 'url': 'https://www.example.com/', 'partner_id': cold.id}])
        self.env['mautomate.scoring']._cron_refresh_queue()
        self.assertEqual((hot.mautomate_grade, cold.mautomate_grade), ('A1', 'D4'))
        self.start_tour('/odoo/action-crm.crm_lead_action_pipeline', 'mautomate_scoring_pipeline', login='mau_tour_rep')
