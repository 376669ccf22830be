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
        arch = etree.fromstring(model.get_views([(False, 'form')])['views']['form']['arch'])
        return model.browse(record.id).web_read(self.read_spec(model, arch))[0]

    def read_spec(self, model, node):
        """ The fields of a view node, as the web client reads them: the names of related records, and the fields
        of a list of related records its own list shows (the rows it opens are read when opened). """
        spec = {}
        for field_node in node.iterfind('.//field'):
            if any(parent.tag == 'field' for parent in field_node.iterancestors() if parent in node.iterdescendants()):
                continue
            field = model._fields[field_node.get('name')]
            if field.type in ('many2one', 'many2many'):
                spec[field.name] = {'fields': {'display_name': {}}}
            elif field.type == 'one2many':
                rows = field_node.find('list')
                spec[field.name] = {'fields': self.read_spec(self.env[field.comodel_name], rows) if rows is not None else {}}
            else:
                spec[field.name] = {}
        return spec

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

    @users('mau_marketing_user', 'mau_marketing_manager')
    def test_marketing_opens_what_it_configures(self):
        """ Forms (their questions' fields, their leads' tags), flows (their triggers' fields), pop-ups, calls to
        action and score rules open for marketing without Sales rights. """
        for xmlid in ('mautomate_form_demo_ebook', 'mautomate_flow_demo_parcel_delivered', 'mautomate_cta_demo_journey'):
            record = self.env.ref(f'mautomate_marketing.{xmlid}')
            self.assertEqual(self.open_form(record)['id'], record.id)
        form = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        self.assertTrue(self.open_form(form)['question_ids'][0]['field_id']['display_name'])

    @users('mau_marketing_manager')
    def test_marketing_manager_builds_a_form_and_tests_it(self):
        tag = self.env['crm.tag'].sudo().create({'name': 'E-book'})
        email = self.env['ir.model.fields']._get('res.partner', 'email')
        self.assertIn(email, self.env['ir.model.fields'].search([('model', '=', 'res.partner'), ('name', '=', 'email')]),
                      "the question's field can be picked")
        form = self.env['mautomate.form'].create({
            'name': 'Price list', 'lead_tag_ids': [(6, 0, tag.ids)],
            'question_ids': [(0, 0, {'field_id': email.id})],
        })
        self.assertEqual(form.question_ids.field_id, email)
        form.action_new_ab_test()
        self.assertEqual(len(form.ab_test_ids.variant_ids), 2, "variant A and the copy to edit")
