from ast import literal_eval

from lxml import etree

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged, users

from .test_flows import FlowCase


@tagged('post_install', '-at_install')
class TestFlowAuthoring(FlowCase):
    """ What the flow's screens let a marketer write is what the engine runs. """

    def test_lead_flow_condition_domain_is_edited_on_leads(self):
        """ The engine filters a lead flow's participants on crm.lead: the step's domain editor offers the fields of
        leads, not of contacts. """
        arch = etree.fromstring(self.Step.get_view(view_type='form')['arch'])
        [domain_field] = arch.xpath("//field[@name='condition_domain']")
        self.assertEqual(literal_eval(domain_field.get('options')), {'model': 'target_model'})
        self.assertTrue(arch.xpath("//field[@name='target_model']"), "the model the domain editor reads is in the view")
        flow = self.make_flow(target='lead')
        with Form(flow) as form, form.step_ids.new() as step:
            step.name = 'Big deal?'
            step.kind = 'condition'
            self.assertEqual(step.target_model, 'crm.lead')
            step.condition_domain = "[('expected_revenue', '>', 10000)]"
        self.assertEqual(flow.step_ids.target_model, 'crm.lead')
        self.assertEqual(self.Step.new({'flow_id': self.make_flow().id}).target_model, 'res.partner')

    def test_email_step_mailing_is_out_of_email_marketing(self):
        """ The mailing holding a step's statistics is never sent itself: Email Marketing does not list it among
        the mailings sent, though it still counts the step's mails. """
        flow = self.make_flow()
        mail1 = self.step(flow, 'mail1')
        flow.action_start()
        flow.action_enroll([self.partner.id])
        self.run_engine()
        mailing = mail1.mailing_id
        self.assertEqual(self.mails(mail1, self.partner).mailing_id, mailing)
        self.assertEqual(self.env['mailing.trace'].search([('mass_mailing_id', '=', mailing.id)]).res_id, self.partner.id)
        action = self.env['ir.actions.act_window']._for_xml_id('mass_mailing.mailing_mailing_action_mail')
        listed = self.env['mailing.mailing'].search(literal_eval(action['domain']))
        self.assertNotIn(mailing, listed, "Email Marketing's list leaves the step's mailing out")
        self.assertNotIn(mailing, self.env['mailing.mailing'].search([('state', '=', 'done')]))

    def test_wait_needs_its_timeout_branch(self):
        """ A wait for an event without a next step for when the event never comes is refused at start, and on
        changes of a running flow. """
        flow = self.make_flow()
        mail1 = self.step(flow, 'mail1')
        wait = self.step(flow, 'wait', kind='wait', parents=[mail1], wait_event_type='page_view', wait_timeout=5)
        thanks = self.step(flow, 'thanks', parents=[wait], branch='yes')
        with self.refused('"timeout" branch'):
            flow.action_start()
        self.assertEqual(flow.state, 'draft')
        tips = self.step(flow, 'tips', parents=[wait], branch='timeout')
        flow.action_start()
        with self.refused('"timeout" branch'):
            tips.branch = 'yes'
        with self.refused('"timeout" branch'):
            tips.unlink()
        with self.refused('"timeout" branch'):
            self.step(flow, 'wait again', kind='wait', parents=[thanks], wait_event_type='email_open', wait_timeout=1)
        with self.refused('"timeout" branch'):
            thanks.write({'kind': 'wait', 'wait_event_type': 'email_open', 'wait_timeout': 1})
        # Paused, the flow is edited freely; a step that always follows covers the timeout too.
        flow.action_pause()
        again = self.step(flow, 'wait again', kind='wait', parents=[thanks], wait_event_type='email_open', wait_timeout=1)
        with self.refused('"timeout" branch'):
            flow.action_start()
        self.step(flow, 'offer', parents=[again])
        flow.action_start()
        self.assertEqual(flow.state, 'running')

    def test_email_step_writes_its_own_mail(self):
        """ Nothing prepared: the step's own subject and body, in the mail editor, become a template of the
        flow's participants behind the scenes, kept in step, and go out rendered for each contact. """
        flow = self.make_flow()
        step = self.Step.create({
            'flow_id': flow.id, 'name': 'Own words', 'kind': 'email',
            'mail_subject': 'Welcome, {{ object.name }}',
            'mail_body': '<p>Hello <t t-out="object.name"/>, here is your guide.</p>',
        })
        self.assertFalse(step.mail_template_id)
        self.assertEqual(step.mail_own_template_id.model, 'res.partner')
        flow.action_start()
        flow.action_enroll([self.partner.id, self.bob.id])
        self.run_engine()
        mail = self.mails(step, self.partner)
        self.assertEqual(mail.subject, 'Welcome, Ann Prospect')
        self.assertIn('Hello Ann Prospect, here is your guide.', mail.body_html)
        self.assertEqual(mail.recipient_ids, self.partner)
        self.assertEqual(self.mails(step, self.bob).subject, 'Welcome, Bob Buyer')
        step.mail_body = '<p>Goodbye <t t-out="object.name"/></p>'
        self.assertIn('Goodbye', step.mail_own_template_id.body_html)
        self.assertIn('Goodbye', step.mailing_id.body_html, "the step's statistics show the mail it sends")
        # Or a template picked: it goes instead.
        step.mail_template_id = self.templates['offer']
        cleo = self.env['res.partner'].create({'name': 'Cleo', 'email': 'cleo@example.com'})
        flow.action_enroll([cleo.id])
        self.run_engine()
        self.assertEqual(self.mails(step, cleo).subject, 'Subject offer')
        own = step.mail_own_template_id
        flow.action_stop()
        flow.action_reset_to_draft()
        step.unlink()
        self.assertFalse(own.exists(), "the step's own template goes with it")

    def test_own_template_follows_the_flow(self):
        """ The template behind a step's mail is of the flow's participants and from its responsible, when these change. """
        flow = self.make_flow()
        step = self.step(flow, 'Own', mail_template_id=False, mail_subject='Hi', mail_body='<p>Hi</p>')
        self.assertEqual(step.mail_own_template_id.model, 'res.partner')
        flow.target = 'lead'
        self.assertEqual(step.mail_own_template_id.model, 'crm.lead')
        responsible = self.env['res.users'].create({'name': 'Rita Responsible', 'login': 'rita.flow', 'email': 'rita@example.com'})
        flow.user_id = responsible
        self.assertEqual(step.mail_own_template_id.email_from, '"Rita Responsible" <rita@example.com>')

    def test_lead_flow_email_step_writes_its_own_mail(self):
        flow = self.make_flow(target='lead')
        step = self.Step.create({'flow_id': flow.id, 'name': 'Lead words', 'kind': 'email',
                                 'mail_subject': 'About {{ object.name }}', 'mail_body': '<p>Dear <t t-out="object.contact_name"/></p>'})
        self.assertEqual(step.mail_own_template_id.model, 'crm.lead')
        lead = self.env['crm.lead'].create({'name': 'Big Deal', 'contact_name': 'Lea Lead', 'email_from': 'lea@example.com'})
        flow.action_start()
        flow.action_enroll([lead.id])
        self.run_engine()
        trace = self.Trace.search([('step_id', '=', step.id)])
        self.assertEqual(trace.mail_mail_id.subject, 'About Big Deal')
        self.assertIn('Dear Lea Lead', trace.mail_mail_id.body_html)
        self.assertEqual(trace.mail_mail_id.email_to, 'lea@example.com')

    @users('flow_writer')
    def test_placeholders_follow_mail_rules(self):
        """ Code in a placeholder is for mail template editors, as in mail's own templates. """
        editor = self.env.ref('mail.group_mail_template_editor').sudo()
        self.env.ref('base.group_user').sudo().implied_ids -= editor
        editor.users -= self.env.user
        flow = self.env['mautomate.flow'].create({'name': 'Writer flow'})
        step = self.env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'Safe', 'kind': 'email',
                                                       'mail_subject': 'Hi {{ object.name }}', 'mail_body': '<p>Hi</p>'})
        self.assertEqual(step.sudo().mail_own_template_id.subject, 'Hi {{ object.name }}')
        with self.assertRaises(AccessError):
            step.mail_subject = "Hi {{ object.sudo().env['res.users'].search([]).mapped('password') }}"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env['res.users'].create({
            'name': 'Flow Writer', 'login': 'flow_writer', 'email': 'writer@example.com',
            'groups_id': [(6, 0, [cls.env.ref('base.group_user').id,
                                  cls.env.ref('mautomate_marketing.group_mautomate_manager').id])],
        })
