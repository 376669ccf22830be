import re

from odoo.tests import tagged

from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestTrackingRules(MautomateHttpCase):

    def log_in_through_the_login_page(self, login):
        csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', self.url_open('/web/login').text).group(1)
        response = self.url_open('/web/login', data={'login': login, 'password': login, 'csrf_token': csrf_token})
        self.assertEqual(response.status_code, 200)

    def test_portal_login_attaches_the_browser_history(self):
        """ A customer browses anonymously, then logs in. Odoo makes no website visitor for pages
        not flagged 'track' (only / and /contactus are, on a fresh website): the cookie is what knows. """
        self.url_open('/contactus-thank-you')
        self.url_open('/contactus-thank-you?again=1')
        anonymous_views = self.events()
        self.assertEqual(len(anonymous_views), 2)
        self.assertFalse(anonymous_views.visitor_id, "no website visitor for untracked pages")
        self.assertFalse(anonymous_views.partner_id)
        self.log_in_through_the_login_page('portal')
        portal_partner = self.env.ref('base.demo_user0').partner_id
        anonymous_views.invalidate_recordset()
        self.assertEqual(anonymous_views.partner_id, portal_partner)

    def test_internal_login_attaches_nothing(self):
        self.url_open('/contactus')
        anonymous_views = self.events()
        self.log_in_through_the_login_page('demo')
        anonymous_views.invalidate_recordset()
        self.assertFalse(anonymous_views.partner_id, "an employee's browser serves others too (tests, the editor)")

    def test_internal_users_are_not_tracked_unless_asked(self):
        self.authenticate('admin', 'admin')
        self.url_open('/')
        self.url_open('/contactus')
        self.assertFalse(self.events())
        self.env['ir.config_parameter'].set_param('mautomate_marketing.track_internal_users', True)
        self.url_open('/contactus')
        self.assertRecordValues(self.events(), [{'partner_id': self.env.ref('base.partner_admin').id, 'anonymous_id': False}])

    def test_excluded_ip_addresses(self):
        params = self.env['ir.config_parameter']
        params.set_param('mautomate_marketing.excluded_ips', '203.0.113.7, 127.0.0.0/8')
        self.url_open('/')
        self.assertFalse(self.events())
        beacon = {'vid': self.new_browser_id(), 'events': [{'type': 'page_view', 'url': 'https://shop.example.com/'}]}
        self.assertEqual(self.post_json('/mautomate/track', beacon).json(), {'stored': 0}, "tracker.js beacons too")
        params.set_param('mautomate_marketing.excluded_ips', '203.0.113.7\n10.0.0.0/8 not-an-ip')
        self.url_open('/')
        self.assertEqual(len(self.events()), 1)
        self.assertEqual(self.post_json('/mautomate/track', beacon).json(), {'stored': 1})

    def test_the_landing_page_has_its_campaign_matched_as_utm_does(self):
        campaign = self.env['utm.campaign'].create({'name': 'Black Friday'})
        medium = self.env['utm.medium'].create({'name': 'Newsletter'})
        self.url_open('/?utm_campaign=black%20friday&utm_medium=NEWSLETTER')
        self.url_open('/contactus')
        self.assertRecordValues(self.events().sorted('id'), [
            {'campaign_id': campaign.id, 'medium_id': medium.id},
            {'campaign_id': campaign.id, 'medium_id': medium.id},
        ])

    def test_merging_contacts_moves_only_their_own_history(self):
        """ The merge wizard, run by a manager whose own browser has anonymous history. """
        Partner = self.env['res.partner']
        first, second = Partner.create([{'name': 'Dup One', 'email': 'dup@merge.example.com'},
                                        {'name': 'Dup Two', 'email': 'dup@merge.example.com'}])
        Visitor = self.env['website.visitor']
        first_visitor = Visitor.create({'access_token': str(first.id)})
        second_visitor = Visitor.create({'access_token': str(second.id)})
        their_browser, manager_browser = self.new_browser_id(), self.new_browser_id()
        Event = self.env['mautomate.event']
        their_events = Event._ingest([{'event_type': 'page_view', 'visitor_id': second_visitor.id, 'anonymous_id': their_browser}])
        their_events |= Event._ingest([{'event_type': 'page_view', 'anonymous_id': their_browser}])
        manager_events = Event._ingest([{'event_type': 'page_view', 'anonymous_id': manager_browser}])

        self.authenticate('admin', 'admin')
        self.opener.cookies.set('mautomate_vid', manager_browser)
        wizard_id = self.make_jsonrpc_request('/web/dataset/call_kw', {
            'model': 'base.partner.merge.automatic.wizard', 'method': 'create',
            'args': [{'partner_ids': [(6, 0, [first.id, second.id])], 'dst_partner_id': first.id}],
            'kwargs': {}})
        self.make_jsonrpc_request('/web/dataset/call_kw', {
            'model': 'base.partner.merge.automatic.wizard', 'method': 'action_merge', 'args': [[wizard_id]], 'kwargs': {}})

        self.env.invalidate_all()
        self.assertFalse(second.exists())
        self.assertTrue(first_visitor.exists())
        self.assertEqual(their_events.partner_id, first)
        self.assertFalse(manager_events.partner_id, "the manager's own browser history stays anonymous")
