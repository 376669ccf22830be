from odoo.exceptions import AccessError
from odoo.tests import common, tagged, users

from .test_flows import FlowCase


@tagged('post_install', '-at_install', 'security')
class TestAudit(FlowCase):
    """ The chatter of a flow says who started, paused and stopped it and who changed its steps; a score rule's says
    who changed its points. Only people's changes are logged: the engine and the crons add no message. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env(context={**cls.env.context, 'no_reset_password': True})
        cls.manager = common.new_test_user(env, 'audit_manager', groups='mautomate_marketing.group_mautomate_manager')
        common.new_test_user(env, 'audit_marketing_user', groups='mautomate_marketing.group_mautomate_user')
        common.new_test_user(env, 'audit_portal', groups='base.group_portal')
        cls.flow = cls.Flow.create({'name': 'Audit flow', 'trigger_ids': [(0, 0, {'trigger_type': 'event', 'event_type': 'page_view'})]})
        cls.mail_step = cls.Step.create({'flow_id': cls.flow.id, 'name': 'mail1', 'kind': 'email',
                                         'mail_template_id': cls.templates['mail1'].id})
        cls.rule = cls.env['mautomate.score.rule'].create({'name': 'Audit pricing visit', 'event_type': 'page_view',
                                                           'url_pattern': '/audit-pricing*', 'points': 10})
        # Odoo tracks no change of a record in the transaction that created it: end that transaction's tracking here.
        cls.env.flush_all()
        cls.env.cr.flush()

    def messages(self, record):
        """ The messages of `record`'s chatter, oldest first, once the pending tracking is written. """
        self.env.flush_all()
        self.env.cr.flush()
        return self.env['mail.message'].sudo().search([('model', '=', record._name), ('res_id', '=', record.id)], order='id')

    def changes(self, messages, field_name):
        """ (author, old value, new value) of each change of `field_name` in `messages`. """
        return [(tracking.mail_message_id.author_id, *(value['value'] for value in (formatted['oldValue'], formatted['newValue'])))
                for tracking in messages.tracking_value_ids.filtered(lambda tracking: tracking.field_id.name == field_name)
                for formatted in tracking._tracking_value_format()]

    @users('audit_manager')
    def test_flow_chatter_says_who_started_paused_and_stopped_it(self):
        flow = self.env['mautomate.flow'].browse(self.flow.id)
        before = self.messages(flow)
        flow.action_start()
        self.messages(flow)
        flow.action_pause()
        self.messages(flow)
        flow.action_stop()
        author = self.manager.partner_id
        self.assertEqual(self.changes(self.messages(flow) - before, 'state'), [
            (author, 'Draft', 'Running'), (author, 'Running', 'Paused'), (author, 'Paused', 'Stopped')])

    @users('audit_manager')
    def test_rule_chatter_says_who_changed_its_points(self):
        rule = self.env['mautomate.score.rule'].browse(self.rule.id)
        before = self.messages(rule)
        rule.points = 25
        self.assertEqual(self.changes(self.messages(rule) - before, 'points'), [(self.manager.partner_id, 10, 25)])

    @users('audit_manager')
    def test_step_changes_are_logged_on_their_flow(self):
        flow = self.env['mautomate.flow'].browse(self.flow.id)
        step = self.env['mautomate.flow.step'].browse(self.mail_step.id)
        before = self.messages(flow)
        step.write({'delay': 3, 'delay_unit': 'hours'})
        changed = self.messages(flow) - before
        self.assertEqual(len(changed), 1)
        self.assertIn('mail1', changed.body)
        self.assertEqual(changed.author_id, self.manager.partner_id)
        self.assertEqual(self.changes(changed, 'delay'), [(self.manager.partner_id, 0, 3)])
        self.assertEqual(self.changes(changed, 'delay_unit'), [(self.manager.partner_id, 'Days', 'Hours')])
        # A write that changes nothing tracked (the order of the steps) logs nothing.
        step.sequence = 20
        self.assertEqual(self.messages(flow) - before, changed)

        added = self.env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'Audit exit', 'kind': 'exit',
                                                        'parent_ids': [(6, 0, step.ids)]})
        added.unlink()
        logged = self.messages(flow) - before - changed
        self.assertEqual(len(logged), 2)
        self.assertIn('Audit exit', logged[0].body)
        self.assertIn('added', logged[0].body)
        self.assertIn('Audit exit', logged[1].body)
        self.assertIn('deleted', logged[1].body)
        self.assertEqual(logged.author_id, self.manager.partner_id)

    @users('audit_manager')
    def test_trigger_changes_are_logged_on_their_flow(self):
        flow = self.env['mautomate.flow'].browse(self.flow.id)
        before = self.messages(flow)
        flow.trigger_ids.name_pattern = 'Pricing*'
        changed = self.messages(flow) - before
        self.assertIn('Trigger', changed.body)
        self.assertEqual(self.changes(changed, 'name_pattern'), [(self.manager.partner_id, False, 'Pricing*')])
        # The scan crons' bookkeeping is no change of the flow.
        flow.trigger_ids.sudo().last_check = '2026-01-01 00:00:00'
        self.assertEqual(self.messages(flow) - before, changed)

    def test_engine_and_crons_add_no_message(self):
        self.flow.action_start()
        self.ingest(event_type='page_view', partner_id=self.partner.id, url='https://shop.example.com/audit-pricing')
        self.ingest(event_type='page_view', partner_id=self.bob.id, url='https://shop.example.com/audit-pricing')
        before = self.messages(self.flow) | self.messages(self.rule) | self.messages(self.mail_step)
        self.run_engine()
        self.env['mautomate.scoring']._cron_refresh_queue()
        self.env['mautomate.scoring']._cron_recompute()
        self.assertEqual(len(self.mails(self.mail_step)), 2, "the engine ran the step")
        self.assertTrue(self.rule.entry_ids, "the crons awarded the rule")
        self.assertEqual(self.messages(self.flow) | self.messages(self.rule) | self.messages(self.mail_step), before)

    @users('audit_marketing_user', 'audit_portal')
    def test_chatter_readable_as_the_record(self):
        """ Who reads a flow reads its chatter; portal users read neither. """
        self.env['mautomate.flow'].sudo().browse(self.flow.id).action_start()
        self.messages(self.flow)
        flow = self.env['mautomate.flow'].browse(self.flow.id)
        if self.env.user.has_group('base.group_user'):
            trackings = flow.message_ids.sudo().tracking_value_ids._filter_has_field_access(self.env)
            self.assertIn('Running', str(trackings._tracking_value_format()))
        else:
            with self.assertRaises(AccessError):
                flow.read(['message_ids'])
            self.assertFalse(self.env['mail.message'].search([('model', '=', 'mautomate.flow'), ('res_id', '=', flow.id)]))
