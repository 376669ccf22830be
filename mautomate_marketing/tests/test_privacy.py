from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import MautomateCase


@tagged('post_install', '-at_install')
class TestPrivacy(MautomateCase):

    def test_retention_cron_deletes_only_expired_events(self):
        now = fields.Datetime.now()
        old = self.Event._ingest([{'event_type': 'page_view', 'occurred_at': now - timedelta(days=31)} for _i in range(25)])
        recent = self.ingest(occurred_at=now - timedelta(days=29))

        self.env['ir.config_parameter'].set_param('mautomate_marketing.retention_days', 0)
        self.assertEqual(self.Event._cron_delete_expired_events(), 0, "0 days keeps everything")
        self.assertEqual(len(old.exists()), 25)

        self.env['ir.config_parameter'].set_param('mautomate_marketing.retention_days', 30)
        # The demo data has old events too: all of them go, and ours.
        expired = self.Event.search_count([('occurred_at', '<', now - timedelta(days=30))])
        self.assertGreaterEqual(expired, 25)
        self.assertEqual(self.Event._cron_delete_expired_events(batch_size=10), expired)
        self.assertFalse(old.exists())
        self.assertTrue(recent.exists())

    def test_retention_cron_stops_after_its_batch_budget(self):
        old = self.Event._ingest([{'event_type': 'page_view', 'occurred_at': fields.Datetime.now() - timedelta(days=400)}
                                  for _i in range(30)])
        self.env['ir.config_parameter'].set_param('mautomate_marketing.retention_days', 365)
        self.assertEqual(self.Event._cron_delete_expired_events(batch_size=10, max_batches=2), 20)
        self.assertEqual(len(old.exists()), 10)

    def test_retention_cron_runs_as_a_cron(self):
        self.ingest(occurred_at=fields.Datetime.now() - timedelta(days=5))
        self.env['ir.config_parameter'].set_param('mautomate_marketing.retention_days', 1)
        self.env.ref('mautomate_marketing.ir_cron_delete_expired_events').method_direct_trigger()
        self.assertFalse(self.Event.search([('occurred_at', '<', fields.Datetime.now() - timedelta(days=1))]))

    def test_erase_tracking_data(self):
        other = self.env['res.partner'].create({'name': 'Other'})
        visitor = self.env['website.visitor'].create({'access_token': str(self.partner.id)})
        mine = self.ingest(partner_id=self.partner.id, visitor_id=visitor.id)
        theirs = self.ingest(partner_id=other.id)
        manager = new_test_user(self.env, 'mautomate_manager', groups='base.group_user,mautomate_marketing.group_mautomate_manager')
        self.partner.with_user(manager).action_mautomate_erase_tracking()
        self.assertFalse(mine.exists())
        self.assertFalse(visitor.exists())
        self.assertTrue(theirs.exists())
        self.assertTrue(self.partner.mautomate_no_tracking, "not tracked again until it opts in again")
        self.assertTrue(self.partner.mautomate_erased_on)
        self.assertFalse(other.mautomate_no_tracking or other.mautomate_erased_on)

    def test_only_managers_erase(self):
        self.ingest(partner_id=self.partner.id)
        salesman = new_test_user(self.env, 'salesman', groups='sales_team.group_sale_salesman')
        with self.assertRaises(AccessError):
            self.partner.with_user(salesman).action_mautomate_erase_tracking()
        self.assertEqual(self.partner.with_user(salesman).mautomate_event_count, 1, "sales reps read the timeline")

    def test_settings_refuse_a_negative_retention(self):
        with self.assertRaises(ValidationError), self.cr.savepoint():
            self.env['res.config.settings'].create({'mautomate_retention_days': -1}).execute()
        self.assertEqual(self.Event._get_retention_days(), 0, "nothing stored is changed")
        self.env['res.config.settings'].create({'mautomate_retention_days': 90, 'mautomate_track_internal_users': True,
                                                'mautomate_excluded_ips': '203.0.113.7'}).execute()
        params = self.env['ir.config_parameter']
        self.assertEqual(self.Event._get_retention_days(), 90)
        self.assertTrue(params.get_param('mautomate_marketing.track_internal_users'))
        self.assertEqual(params.get_param('mautomate_marketing.excluded_ips'), '203.0.113.7')
