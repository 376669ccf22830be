from datetime import datetime

from odoo.tests import tagged

from .common import MautomateCase


@tagged('post_install', '-at_install')
class TestEventLog(MautomateCase):

    def test_ingest_stores_every_column(self):
        campaign = self.env['utm.campaign'].create({'name': 'Spring'})
        event = self.ingest(
            event_type='custom', source='api', name='Video watched 30 s', url='https://example.com/tour',
            partner_id=self.partner.id, value=30, payload={'video': 'tour'}, campaign_id=campaign.id,
            res_model='res.partner', res_id=self.partner.id, occurred_at=datetime(2026, 1, 2, 3, 4, 5))
        self.assertRecordValues(event, [{
            'event_type': 'custom', 'source': 'api', 'name': 'Video watched 30 s', 'url': 'https://example.com/tour',
            'partner_id': self.partner.id, 'value': 30.0, 'payload': {'video': 'tour'}, 'campaign_id': campaign.id,
            'res_model': 'res.partner', 'res_id': self.partner.id, 'occurred_at': datetime(2026, 1, 2, 3, 4, 5),
        }])
        self.assertEqual(event.display_name, 'Video watched 30 s')
        self.assertEqual(self.ingest(name=None).display_name, 'Page View')

    def test_ingest_bounds_text(self):
        event = self.ingest(name='n' * 1000, url='https://example.com/' + 'u' * 5000)
        self.assertEqual(len(event.name), 256)
        self.assertEqual(len(event.url), 2048)

    def test_ingest_many_in_one_call(self):
        events = self.Event._ingest([{'event_type': 'page_view', 'url': f'https://example.com/{i}'} for i in range(120)])
        self.assertEqual(len(events), 120)
        self.assertEqual(self.Event.search_count([('id', 'in', events.ids)]), 120)
        self.assertFalse(self.Event._ingest([]))

    def test_opted_out_and_blacklisted_contacts_are_not_tracked(self):
        opted_out = self.env['res.partner'].create({'name': 'Opted Out', 'email': 'out@example.com', 'mautomate_no_tracking': True})
        blacklisted = self.env['res.partner'].create({'name': 'Blacklisted', 'email': 'Black <black@example.com>'})
        self.env['mail.blacklist']._add('black@example.com')
        events = self.Event._ingest([
            {'event_type': 'page_view', 'partner_id': opted_out.id},
            {'event_type': 'page_view', 'partner_id': blacklisted.id},
            {'event_type': 'page_view', 'partner_id': self.partner.id},
        ])
        self.assertEqual(events.partner_id, self.partner)

    def test_proven_browser_passes_its_contact_to_new_events(self):
        browser_id = self.new_browser_id()
        # An event naming the browser and a contact (a typed e-mail) is a claim: later events stay anonymous.
        self.ingest(anonymous_id=browser_id, partner_id=self.partner.id)
        self.assertFalse(self.ingest(anonymous_id=browser_id).partner_id)
        self.env['mautomate.proven.browser']._prove(browser_id, self.partner, 'login')
        later = self.ingest(anonymous_id=browser_id)
        self.assertEqual(later.partner_id, self.partner)
        self.assertFalse(self.ingest(anonymous_id=self.new_browser_id()).partner_id)

    def test_timelines_of_partner_and_lead(self):
        namesake = self.env['res.partner'].create({'name': 'Ann (other record)', 'email': 'ANN@prospect.example.com'})
        lead = self.env['crm.lead'].create({'name': 'Ann wants a quote', 'email_from': 'ann@prospect.example.com'})
        own = self.ingest(partner_id=self.partner.id, name='own')
        same_email = self.ingest(partner_id=namesake.id, name='same e-mail')
        on_lead = self.ingest(lead_id=lead.id, name='lead form')
        self.ingest(partner_id=self.env['res.partner'].create({'name': 'Someone else'}).id)

        partner_timeline = self.partner.action_mautomate_timeline()
        self.assertEqual(self.Event.search(partner_timeline['domain']), own)
        self.assertEqual(self.partner.mautomate_event_count, 1)
        lead_timeline = lead.action_mautomate_timeline()
        self.assertEqual(lead_timeline['res_model'], 'mautomate.event')
        self.assertEqual(self.Event.search(lead_timeline['domain']), own | same_email | on_lead)
        self.assertEqual(lead.mautomate_event_count, 3)
        # newest first
        self.assertEqual(self.Event.search(lead_timeline['domain'])[0], on_lead)
