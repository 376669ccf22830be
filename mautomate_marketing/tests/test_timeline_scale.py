from odoo.tests import tagged

from .common import MautomateCase


@tagged('post_install', '-at_install')
class TestLeadTimelineDomain(MautomateCase):
    """ A lead's timeline, resolved to contact and visitor ids so that it reads the log through its indexes. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Partner = cls.env['res.partner']
        cls.customer = Partner.create({'name': 'Ann at Work', 'email': 'ann.work@prospect.example.com'})
        # Same person, other contacts: the e-mail differs only in case and name; one is archived.
        cls.same_email = Partner.create({'name': 'Ann', 'email': '"Ann P." <ANN@Prospect.example.com>'})
        cls.archived = Partner.create({'name': 'Old Ann', 'email': 'ann@prospect.example.com', 'active': False})
        cls.stranger = Partner.create({'name': 'Bob', 'email': 'bob@elsewhere.example.com'})
        cls.visitor = cls.env['website.visitor'].create({'access_token': 'b' * 32})
        cls.other_visitor = cls.env['website.visitor'].create({'access_token': 'c' * 32})
        cls.lead = cls.env['crm.lead'].create({
            'name': 'Ann wants a quote', 'partner_id': cls.customer.id, 'email_from': 'ann@prospect.example.com',
            'visitor_ids': [(6, 0, cls.visitor.ids)]})
        cls.other_lead = cls.env['crm.lead'].create({'name': 'Bob wants a demo', 'email_from': 'bob@elsewhere.example.com'})

    def timeline(self, lead):
        return self.Event.search(lead.action_mautomate_timeline()['domain'])

    def test_lead_timeline_holds_the_person_and_nobody_else(self):
        own = self.ingest(lead_id=self.lead.id, anonymous_id=self.new_browser_id())
        of_customer = self.ingest(partner_id=self.customer.id)
        of_same_email = self.ingest(partner_id=self.same_email.id) | self.ingest(partner_id=self.partner.id)
        of_archived = self.ingest(partner_id=self.archived.id)
        of_visitor = self.ingest(visitor_id=self.visitor.id, anonymous_id=self.new_browser_id())
        self.ingest(partner_id=self.stranger.id)
        self.ingest(lead_id=self.other_lead.id)
        self.ingest(visitor_id=self.other_visitor.id, anonymous_id=self.new_browser_id())
        self.ingest(anonymous_id=self.new_browser_id())

        expected = own | of_customer | of_same_email | of_archived | of_visitor
        self.assertEqual(self.timeline(self.lead), expected)
        self.assertEqual(self.lead.mautomate_event_count, len(expected))
        self.assertEqual(self.timeline(self.other_lead), self.Event.search([('lead_id', '=', self.other_lead.id)]) |
                         self.Event.search([('partner_id', '=', self.stranger.id)]))

    def test_lead_timeline_domain_names_contacts_by_id(self):
        """ The domain never joins on the contact's e-mail, which would scan the whole log. """
        domain = self.lead.action_mautomate_timeline()['domain']
        self.assertNotIn('partner_id.email_normalized', str(domain))
        self.assertIn(('partner_id', 'in', sorted((self.customer | self.same_email | self.archived | self.partner).ids)), domain)

    def test_batched_counts_and_leads_without_person(self):
        bare = self.env['crm.lead'].create({'name': 'Nobody yet'})
        self.ingest(lead_id=self.lead.id)
        self.ingest(partner_id=self.stranger.id)
        self.ingest(lead_id=bare.id)
        leads = self.lead | self.other_lead | bare
        self.env.invalidate_all()
        self.assertEqual(leads.mapped('mautomate_event_count'), [1, 1, 1])
        self.assertEqual(self.env['crm.lead'].new({'name': 'Draft'}).mautomate_event_count, 0)

    def test_contact_count_is_batched(self):
        self.ingest(partner_id=self.customer.id)
        self.ingest(partner_id=self.customer.id)
        self.ingest(partner_id=self.stranger.id)
        contacts = self.customer | self.stranger | self.same_email
        self.env.invalidate_all()
        with self.assertQueryCount(1):
            self.assertEqual(contacts.mapped('mautomate_event_count'), [2, 1, 0])
