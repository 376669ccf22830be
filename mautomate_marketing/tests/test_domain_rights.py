from datetime import timedelta

from freezegun import freeze_time

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .test_flows import FlowCase


@tagged('post_install', '-at_install', 'security')
class TestDomainRights(FlowCase):
    """ A flow's domains find records with its responsible's rights: a trigger, an audience, a goal or a
    condition never reaches what that user may not read, and what a trigger found is not shown to marketing. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env(context={**cls.env.context, 'no_reset_password': True, 'mail_create_nosubscribe': True})
        cls.manager = new_test_user(env, 'rights_manager', groups='mautomate_marketing.group_mautomate_manager')
        cls.seller, cls.other_seller = (new_test_user(env, login, groups='sales_team.group_sale_salesman')
                                        for login in ('rights_seller', 'rights_other_seller'))
        cls.admin = cls.env.ref('base.user_admin')
        cls.lead_template = cls.env['mail.template'].create({
            'name': 'Rights lead', 'model_id': cls.env['ir.model']._get_id('crm.lead'), 'subject': 'About {{ object.name }}',
            'email_from': 'shop@example.com', 'email_to': '{{ object.email_from }}', 'body_html': '<p>Hello lead</p>'})

    def record_trigger(self, model, **vals):
        return {'trigger_type': 'record', 'res_model_id': self.env['ir.model']._get_id(model), **vals}

    def scan_records(self, at):
        with freeze_time(at):
            self.env['mautomate.flow.trigger.scan']._cron_records()
        self.env.invalidate_all()

    def leads(self, *owners):
        return self.env['crm.lead'].create([{
            'name': f'Rights deal {index}', 'email_from': f'deal{index}@rights.example.com', 'user_id': owner.id,
        } for index, owner in enumerate(owners)])

    def test_trigger_on_private_notes_reads_nothing(self):
        """ The exploit: a marketing manager watches messages whose body holds a secret. A note on a lead the
        manager cannot open never enrols its author, and the occurrences are not the manager's to read. """
        flow = self.Flow.with_user(self.manager).create({
            'name': 'Note watcher',
            'trigger_ids': [(0, 0, self.record_trigger('mail.message', partner_field='author_id',
                                                       filter_domain=repr([('body', 'ilike', 'SECRET 9')])))],
        })
        self.step(flow, 'thanks')
        flow.with_user(self.manager).action_start()
        self.scan_records(self.start)
        secret_lead = self.leads(self.other_seller)
        secret_lead.message_post(body='SECRET 9: the real price', message_type='comment', subtype_xmlid='mail.mt_note',
                                 author_id=self.partner.id)
        self.partner.message_post(body='SECRET 9 is our campaign name', message_type='comment',
                                  subtype_xmlid='mail.mt_note', author_id=self.bob.id)
        self.scan_records(self.start + timedelta(minutes=5))
        self.assertEqual(flow.participant_ids.partner_id, self.bob, "only the note the manager may read enrols its author")
        with self.assertRaises(AccessError):
            self.env['mautomate.flow.trigger.fire'].with_user(self.manager).search([])

    def test_triggers_on_models_the_responsible_cannot_read_are_refused(self):
        Flow = self.Flow.with_user(self.manager)
        with self.refused("may not read Lead"):
            Flow.create({'name': 'Leads watcher', 'trigger_ids': [(0, 0, self.record_trigger('crm.lead'))]})
        with self.refused("only an administrator"):
            Flow.create({'name': 'Settings watcher', 'trigger_ids': [(0, 0, self.record_trigger('ir.config_parameter'))]})
        with self.refused("only an administrator"):
            Flow.create({'name': 'Keys watcher', 'trigger_ids': [
                (0, 0, self.record_trigger('res.users.apikeys', partner_field='user_id.partner_id'))]})
        flow = self.Flow.with_user(self.admin).create({'name': 'Keys watcher', 'trigger_ids': [
            (0, 0, self.record_trigger('res.users.apikeys', partner_field='user_id.partner_id'))]})
        self.assertEqual(flow.user_id, self.admin, "an administrator may watch technical models")
        with self.refused("has rights you do not have"):
            flow.with_user(self.manager).trigger_ids.filter_domain = repr([('name', '=', 'CI')])
        with self.refused("has rights you do not have"):
            Flow.create({'name': 'Borrowed rights', 'user_id': self.admin.id})
        installed = self.Flow.create({'name': 'Installed with the module'})
        self.assertTrue(installed.user_id._is_superuser())
        with self.refused("has rights you do not have"):
            installed.with_user(self.manager).domain = repr([('email', 'ilike', 'example.com')])
        installed.with_user(self.manager).write({'user_id': self.manager.id, 'domain': repr([('email', 'ilike', 'example.com')])})

    def test_audience_goal_and_condition_match_what_the_responsible_reads(self):
        """ A flow of leads run by a salesman who reads his own and unassigned leads: the audience enrols those
        only; a lead given to another salesman afterwards no longer matches the goal or a condition. """
        name = repr([('name', 'ilike', 'Rights deal')])
        goal_flow = self.Flow.create({'name': 'Goal', 'target': 'lead', 'user_id': self.seller.id, 'domain': name,
                                      'goal_domain': name})
        self.step(goal_flow, 'mail', mail_template_id=self.lead_template.id, delay=1)
        condition_flow = self.Flow.create({'name': 'Condition', 'target': 'lead', 'user_id': self.seller.id})
        check = self.step(condition_flow, 'check', kind='condition', condition_type='domain', condition_domain=name)
        for branch in ('yes', 'no'):
            self.step(condition_flow, branch, kind='exit', parents=[check], branch=branch)
        (goal_flow | condition_flow).action_start()
        mine, unassigned, theirs = self.leads(self.seller, self.env['res.users'], self.other_seller)
        goal_flow.action_enroll((mine | unassigned | theirs).ids)
        self.assertEqual(goal_flow.participant_ids.lead_id, mine | unassigned, "the audience is what the salesman reads")
        condition_flow.action_enroll((mine | unassigned).ids)
        unassigned.user_id = self.other_seller
        self.run_engine(self.start + timedelta(days=1))
        converted = goal_flow.participant_ids.filtered(lambda participant: participant.state == 'converted')
        self.assertEqual(converted.lead_id, mine, "a lead the salesman no longer reads does not reach his goal")
        outcomes = {trace.participant_id.lead_id: trace.outcome for trace in self.Trace.search([('step_id', '=', check.id)])}
        self.assertEqual(outcomes, {mine: 'yes', unassigned: 'no'})

    def test_salesman_reads_the_events_of_his_leads(self):
        mine, theirs = self.leads(self.seller, self.other_seller)
        events = {event.name: event for event in self.Event._ingest([
            {'event_type': 'page_view', 'partner_id': self.partner.id, 'lead_id': mine.id, 'name': 'My visit'},
            {'event_type': 'page_view', 'partner_id': self.partner.id, 'lead_id': theirs.id, 'name': 'Their visit'},
            {'event_type': 'page_view', 'partner_id': self.partner.id, 'name': 'Contact visit'},
        ])}
        mine_event, their_event, contact_event = events['My visit'], events['Their visit'], events['Contact visit']
        rule = self.env['mautomate.score.rule'].create({'name': 'Rights points', 'rule_type': 'behaviour', 'event_type': 'download'})
        self.env['mautomate.score.entry'].create([{
            'partner_id': self.partner.id, 'lead_id': lead.id, 'event_id': event.id, 'rule_id': rule.id, 'points': 5,
        } for lead, event in ((mine, mine_event), (theirs, their_event))])
        Event = self.Event.with_user(self.seller)
        self.assertEqual(Event.search([('partner_id', '=', self.partner.id)]), mine_event | contact_event)
        self.assertEqual(Event.browse(mine_event.id).read(['name'])[0]['name'], 'My visit')
        with self.assertRaises(AccessError):
            Event.browse(their_event.id).read(['name'])
        contact = self.partner.with_user(self.seller)
        self.assertEqual(contact.mautomate_get_timeline_data()['total'], 2)
        self.assertEqual(contact.mautomate_event_count, 2)
        self.assertEqual(mine.with_user(self.seller).mautomate_get_timeline_data()['total'], 1)
        why = contact.mautomate_score_why
        self.assertIn('My visit', why)
        self.assertNotIn('Their visit', why, "the score tab does not show what another salesman's lead did")
        self.assertEqual(self.Event.with_user(self.other_seller).search([('partner_id', '=', self.partner.id)]),
                         their_event | contact_event)
        self.assertEqual(self.Event.with_user(self.manager).search_count([('partner_id', '=', self.partner.id)]), 3,
                         "marketing reads every event")
