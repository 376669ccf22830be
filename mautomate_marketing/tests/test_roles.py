from lxml import etree

from odoo.exceptions import AccessError
from odoo.tests import common, tagged, users


@tagged('post_install', '-at_install', 'security')
class TestRoles(common.TransactionCase):
    """ Every role opens contacts (and leads, where it may) as the web client does: the form view
    for that user, then web_read of the fields it shows. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_user = common.new_test_user
        cls.env = cls.env(context={**cls.env.context, 'no_reset_password': True, 'mail_create_nosubscribe': True})
        new_user(cls.env, 'mau_employee', groups='base.group_user')
        new_user(cls.env, 'mau_partner_manager', groups='base.group_user,base.group_partner_manager')
        new_user(cls.env, 'mau_salesman_own', groups='sales_team.group_sale_salesman')
        new_user(cls.env, 'mau_salesman_all', groups='sales_team.group_sale_salesman_all_leads')
        new_user(cls.env, 'mau_marketing_user', groups='mautomate_marketing.group_mautomate_user')
        new_user(cls.env, 'mau_marketing_manager', groups='mautomate_marketing.group_mautomate_manager')
        cls.contact = cls.env['res.partner'].create({'name': 'Role Contact', 'email': 'role@contact.example.com'})
        cls.lead = cls.env['crm.lead'].create({'name': 'Role Lead', 'email_from': 'role@contact.example.com',
                                               'partner_id': cls.contact.id, 'user_id': False})
        cls.env['mautomate.event']._ingest([{'event_type': 'page_view', 'partner_id': cls.contact.id}])

    def open_form(self, record):
        """ What the web client does to show the record's form; returns the fields it read. """
        model = self.env[record._name]
        arch = model.get_views([(False, 'form')])['views']['form']['arch']
        top_level = [node.get('name') for node in etree.fromstring(arch).iter('field')
                     if not any(parent.tag == 'field' for parent in node.iterancestors())]
        values = model.browse(record.id).web_read({name: {} for name in top_level})[0]
        return values

    def assert_timeline_readable(self, record):
        action = self.env[record._name].browse(record.id).action_mautomate_timeline()
        self.assertTrue(self.env['mautomate.event'].search(action['domain']))

    @users('mau_employee', 'mau_partner_manager')
    def test_employees_open_contacts(self):
        values = self.open_form(self.contact)
        self.assertEqual(values['name'], 'Role Contact')
        self.assertNotIn('mautomate_event_count', values, "no event log for users who may not read it")
        arch = self.env['res.partner'].get_views([(False, 'form')])['views']['form']['arch']
        self.assertNotIn('action_mautomate_timeline', arch, "no Timeline button that would fail")
        self.assertNotIn('mautomate_timeline', arch)
        with self.assertRaises(AccessError):
            self.env['crm.lead'].browse(self.lead.id).read(['name'])

    @users('mau_salesman_own', 'mau_salesman_all', 'mau_marketing_manager')
    def test_sales_and_marketing_open_contacts_and_leads(self):
        self.assertEqual(self.open_form(self.contact)['mautomate_event_count'], 1)
        self.assert_timeline_readable(self.contact)
        if self.env.user.has_group('sales_team.group_sale_salesman'):
            self.assertEqual(self.open_form(self.lead)['mautomate_event_count'], 1)
            self.assert_timeline_readable(self.lead)

    @users('mau_marketing_user')
    def test_marketing_user_opens_contacts(self):
        self.assertEqual(self.open_form(self.contact)['mautomate_event_count'], 1)
        self.assert_timeline_readable(self.contact)
