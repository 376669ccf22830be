import hashlib
import hmac
import json
from datetime import datetime, timedelta

import pytz

from odoo.tests import common, tagged
from odoo.tools import mute_logger

from odoo.addons.sms.tests.common import SMSCase

from .test_flows import FlowCase
from .test_outgoing import WebhookMixin


@tagged('post_install', '-at_install')
class TestFlowSteps(WebhookMixin, FlowCase, SMSCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner_model = cls.env['ir.model']._get('res.partner')

    def enrolled(self, flow, partners):
        flow.action_start()
        flow.action_enroll(partners.ids)

    def trace_of(self, step, partner):
        return self.Trace.search([('step_id', '=', step.id), ('participant_id.partner_id', '=', partner.id)])

    def test_send_sms(self):
        """ The template's SMS to each contact with a valid number; the others are skipped and say why. """
        template = self.env['sms.template'].create({'name': 'Flow SMS', 'model_id': self.partner_model.id,
                                                    'body': 'Hi {{ object.name }}, your code is ready'})
        self.partner.mobile = '+32 456 00 00 01'
        no_phone = self.env['res.partner'].create({'name': 'No Phone'})
        invalid = self.env['res.partner'].create({'name': 'Bad Number', 'phone': '12'})
        blacklisted = self.env['res.partner'].create({'name': 'Black Listed', 'mobile': '+32 456 00 00 02'})
        self.env['phone.blacklist'].sudo().create({'number': '+32456000002'})
        flow = self.make_flow()
        sms = self.step(flow, 'sms', kind='sms', sms_template_id=template.id)
        after = self.step(flow, 'tag', kind='tags', parents=[sms], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        self.enrolled(flow, self.partner | no_phone | invalid | blacklisted)
        with self.mockSMSGateway():
            self.run_engine()
            self.assertSMS(self.partner, '+32456000001', 'outgoing', content='Hi Ann Prospect, your code is ready')
            self.assertEqual(len(self._new_sms), 1, "one SMS: only to the valid number")
            self.env['sms.sms'].sudo()._process_queue()
        self.assertSMSIapSent(['+32456000001'], 'Hi Ann Prospect, your code is ready')
        reasons = {partner: self.trace_of(sms, partner).skip_reason for partner in (no_phone, invalid, blacklisted)}
        self.assertEqual(reasons, {no_phone: 'no_phone', invalid: 'invalid_phone', blacklisted: 'blacklisted'})
        self.assertEqual(self.trace_of(sms, self.partner).state, 'done')
        self.assertIn('your code is ready', self.partner.message_ids.filtered(lambda m: m.message_type == 'sms').body)
        self.assertEqual(self.Trace.search_count([('step_id', '=', after.id), ('state', '=', 'done')]), 4,
                         "the flow goes on without the SMS")

    def test_update_fields(self):
        """ "Update Record" server actions as lines: fixed values on the whole batch at once, a computed one per
        contact, and a field of a linked record. """
        company = self.env['res.partner'].create({'name': 'Buyer Corp', 'is_company': True})
        self.bob.parent_id = company
        actions = self.env['ir.actions.server'].create([{
            'name': name, 'model_id': self.partner_model.id, 'state': 'object_write', 'update_path': path,
            'evaluation_type': evaluation, 'value': value,
        } for name, path, evaluation, value in (
            ('Job', 'function', 'value', 'Flow Buyer'),
            ('Reference', 'ref', 'equation', "record.name.upper()"),
            ('Company website', 'parent_id.website', 'value', 'https://buyer.example.com'),
        )])
        flow = self.make_flow()
        self.step(flow, 'update', kind='update', update_action_ids=[(6, 0, actions.ids)])
        self.enrolled(flow, self.partner | self.bob)
        self.run_engine()
        self.assertEqual((self.partner | self.bob).mapped('function'), ['Flow Buyer', 'Flow Buyer'])
        self.assertEqual((self.partner.ref, self.bob.ref), ('ANN PROSPECT', 'BOB BUYER'))
        self.assertEqual(company.website, 'https://buyer.example.com')
        self.assertFalse(company.ref, "a computed value is the contacts'")
        code = self.env['ir.actions.server'].create({'name': 'Code', 'model_id': self.partner_model.id, 'state': 'code',
                                                     'code': 'records.write({"comment": "x"})'})
        with self.refused("not an update of a contact's field"):
            self.step(flow, 'bad update', kind='update', update_action_ids=[(6, 0, code.ids)])
        with self.refused("add the fields to update"):
            self.step(flow, 'empty update', kind='update')

    def test_run_server_action(self):
        """ The action runs once for the batch, with the contacts as its records. """
        action = self.env['ir.actions.server'].create({
            'name': 'Batch note', 'model_id': self.partner_model.id, 'state': 'code',
            'code': 'records.write({"ref": "in a batch of %d" % len(records)})'})
        flow = self.make_flow()
        self.step(flow, 'action', kind='server_action', server_action_id=action.id)
        self.enrolled(flow, self.partner | self.bob)
        self.run_engine()
        self.assertEqual((self.partner.ref, self.bob.ref), ('in a batch of 2', 'in a batch of 2'))
        lead_action = self.env['ir.actions.server'].create({
            'name': 'On leads', 'model_id': self.env['ir.model']._get_id('crm.lead'), 'state': 'code', 'code': 'pass'})
        with self.refused("a flow runs actions on contacts only"):
            self.step(flow, 'bad action', kind='server_action', server_action_id=lead_action.id)

    def test_lead_convert_and_assign(self):
        """ A lead for a contact without an open one; it is converted, then shared among the team's members. """
        env = self.env(context={**self.env.context, 'no_reset_password': True})
        sellers = [common.new_test_user(env, f'flow_seller_{i}', groups='sales_team.group_sale_salesman')
                   for i in range(3)]
        direct, team = self.env['crm.team'].create([{'name': 'Flow Direct'}, {'name': 'Flow Key Accounts'}])
        self.env['crm.team.member'].create([{'crm_team_id': team.id, 'user_id': seller.id,
                                             'assignment_optout': index == 2} for index, seller in enumerate(sellers)])
        existing = self.env['crm.lead'].create({'name': 'Bob asked', 'partner_id': self.bob.id, 'type': 'lead'})
        flow = self.make_flow()
        lead = self.step(flow, 'lead', kind='lead', crm_team_id=direct.id, lead_name='Catalogue request')
        convert = self.step(flow, 'convert', kind='convert', parents=[lead])
        assign = self.step(flow, 'assign', kind='assign', parents=[convert], crm_team_id=team.id)
        self.enrolled(flow, self.partner | self.bob)
        self.run_engine()
        self.assertEqual(self.trace_of(lead, self.bob).skip_reason, 'lead_exists')
        self.assertEqual(self.trace_of(lead, self.partner).state, 'done')
        leads = flow.participant_ids.lead_id
        self.assertEqual(len(leads), 2)
        self.assertIn(existing, leads, "Bob's open lead is his participant's")
        new_lead = leads - existing
        self.assertEqual((new_lead.name, new_lead.partner_id), ('Catalogue request - Ann Prospect', self.partner))
        self.assertEqual(set(leads.mapped('type')), {'opportunity'})
        self.assertEqual(leads.team_id, team)
        self.assertEqual(sorted(leads.user_id.ids), sorted([sellers[0].id, sellers[1].id]),
                         "one lead each, none for the member who opted out")
        self.assertEqual(set(self.Trace.search([('step_id', '=', assign.id)]).mapped('state')), {'done'})
        # Without a lead, there is nothing to convert.
        other = self.make_flow(name='Convert only')
        convert_only = self.step(other, 'convert', kind='convert')
        carol = self.env['res.partner'].create({'name': 'Carol No Lead'})
        self.enrolled(other, carol)
        self.run_engine()
        self.assertEqual(self.trace_of(convert_only, carol).skip_reason, 'no_lead')
        with self.refused("choose the team"):
            self.step(other, 'assign', kind='assign')

    @mute_logger('odoo.addons.mautomate_marketing.models.mautomate_flow_engine')
    def test_webhook_retried_then_delivered(self):
        """ The receiver fails at first: the engine calls again after 5 minutes; the call is signed. """
        server, url = self.start_receiver([500, 200])
        flow = self.make_flow(name='Webhook flow')
        hook = self.step(flow, 'hook', kind='webhook', webhook_url=url)
        after = self.step(flow, 'tag', kind='tags', parents=[hook], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        self.enrolled(flow, self.partner)
        trace = self.trace_of(hook, self.partner)
        self.run_flows()
        self.assertEqual((trace.state, trace.attempts), ('scheduled', 1))
        # Only the status code: the receiver's answer is not kept.
        self.assertIn("The webhook answered 500.", trace.error_message)
        self.assertNotIn("receiver is down", trace.error_message)
        self.run_flows(self.start + timedelta(minutes=5))
        self.assertEqual((trace.state, trace.error_message), ('done', False))
        self.assertEqual(self.trace_of(after, self.partner).state, 'done')
        self.assertEqual(len(server.received), 2)
        headers, body = server.received[-1]
        expected = 'sha256=' + hmac.new(hook.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(headers['X-Mautomate-Signature'], expected)
        self.assertEqual(headers['Content-Type'], 'application/json')
        payload = json.loads(body)
        self.assertEqual(payload['trace_id'], trace.id)
        self.assertEqual(payload['contact']['email'], 'ann@prospect.example.com')
        self.assertEqual((payload['flow']['id'], payload['step']['id']), (flow.id, hook.id))
        self.assertNotEqual(hook.webhook_secret, hook.copy({'flow_id': flow.id}).webhook_secret,
                            "each step signs with its own secret")

    @mute_logger('odoo.addons.mautomate_marketing.models.mautomate_flow_engine')
    def test_webhook_stops_in_error(self):
        """ A receiver that keeps failing: after the last attempt the trace stays in error and says why; the
        contacts it answered for go on. """
        server, url = self.start_receiver([503])
        flow = self.make_flow(name='Webhook down')
        hook = self.step(flow, 'hook', kind='webhook', webhook_url=url, webhook_timeout=5)
        after = self.step(flow, 'tag', kind='tags', parents=[hook], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        self.enrolled(flow, self.partner | self.bob)
        for minutes in (0, 5, 35, 24 * 60):
            self.run_flows(self.start + timedelta(minutes=minutes))
        traces = hook.trace_ids
        self.assertEqual(set(traces.mapped('state')), {'error'})
        self.assertEqual(set(traces.mapped('attempts')), {3})
        self.assertIn("The webhook answered 503", traces[0].error_message)
        self.assertEqual(len(server.received), 6, "3 attempts for each contact, no more")
        self.assertFalse(after.trace_ids)
        self.assertEqual(hook.error_count, 2)
        for vals, message in (({'webhook_url': False}, "give its URL"), ({'webhook_url': 'ftp://example.com'}, "http://"),
                              ({'webhook_timeout': 0}, "between 1 and 60 seconds")):
            with self.refused(message):
                hook.write(vals)

    def test_url_condition(self):
        """ Visited the pricing page since the mail: yes; a visit before it or of another page: no. """
        flow = self.make_flow()
        mail1 = self.step(flow, 'mail1')
        visited = self.step(flow, 'pricing?', kind='condition', parents=[mail1], delay=2, condition_type='url',
                            condition_url='/pricing*', condition_step_id=mail1.id)
        yes = self.step(flow, 'yes', kind='tags', parents=[visited], branch='yes', tag_add_ids=[(6, 0, self.tag_vip.ids)])
        self.step(flow, 'no', kind='tags', parents=[visited], branch='no', tag_add_ids=[(6, 0, self.tag_vip.ids)])
        carol = self.env['res.partner'].create({'name': 'Carol Full URL', 'email': 'carol@example.com'})
        self.enrolled(flow, self.partner | self.bob | carol)
        self.ingest(event_type='page_view', partner_id=self.bob.id, url='https://shop.example.com/pricing',
                    at=self.start - timedelta(hours=1))
        self.run_engine()
        day = self.start + timedelta(days=1)
        self.ingest(event_type='page_view', partner_id=self.partner.id, url='https://shop.example.com/pricing?plan=pro', at=day)
        self.ingest(event_type='page_view', partner_id=self.bob.id, url='https://shop.example.com/about', at=day)
        self.ingest(event_type='form_submit', partner_id=carol.id, url='https://shop.example.com/pricing', at=day)
        self.run_engine(self.start + timedelta(days=2))
        outcomes = {trace.participant_id.partner_id: trace.outcome for trace in visited.trace_ids}
        self.assertEqual(outcomes, {self.partner: 'yes', self.bob: 'no', carol: 'no'})
        self.assertEqual(yes.trace_ids.participant_id.partner_id, self.partner)
        # A pattern with a scheme and host matches the whole URL.
        visited.condition_url = 'https://shop.example.com/pri*'
        self.assertEqual(visited._traces_with_event(visited.trace_ids, 'page_view', mail1, visited.condition_url),
                         self.trace_of(visited, self.partner).ids)
        visited.condition_url = 'https://other.example.com/*'
        self.assertFalse(visited._traces_with_event(visited.trace_ids, 'page_view', mail1, visited.condition_url))
        with self.refused("choose the URL"):
            visited.condition_url = ' '

    def test_random_split(self):
        """ 50/30/20: each participant follows the one variant drawn for it, the same on each run, and the draws
        follow the weights. """
        flow = self.make_flow()
        split = self.step(flow, 'split', kind='split', split_weight_a=50, split_weight_b=30, split_weight_c=20)
        variants = {}
        for branch in ('variant_a', 'variant_b', 'variant_c'):
            tag = self.env['res.partner.category'].create({'name': f'Flow {branch}'})
            variants[branch] = (self.step(flow, branch, kind='tags', parents=[split], branch=branch,
                                          tag_add_ids=[(6, 0, tag.ids)]), tag)
        partners = self.env['res.partner'].create([{'name': f'Split {i}'} for i in range(40)])
        self.enrolled(flow, partners)
        self.run_engine()
        for trace in split.trace_ids:
            draw = split._split_draw(trace.id)
            expected = 'variant_a' if draw < 50 else 'variant_b' if draw < 80 else 'variant_c'
            self.assertEqual(trace.outcome, expected)
            partner = trace.participant_id.partner_id
            self.assertEqual(partner.category_id, variants[expected][1], "one variant per participant")
        self.assertEqual(sum(len(step.trace_ids) for step, _tag in variants.values()), 40)
        counts = dict.fromkeys(('a', 'b', 'c'), 0)
        for trace_id in range(1, 20001):
            draw = split._split_draw(trace_id)
            counts['a' if draw < 50 else 'b' if draw < 80 else 'c'] += 1
        for key, weight in (('a', 50), ('b', 30), ('c', 20)):
            self.assertAlmostEqual(counts[key] / 20000, weight / 100, delta=0.02)

    def test_invalid_split_and_settings(self):
        flow = self.make_flow()
        with self.refused("give its variants a weight"):
            self.step(flow, 'split', kind='split')
        with self.refused("add up to 90%, not 100%"):
            self.step(flow, 'split', kind='split', split_weight_a=60, split_weight_b=30)
        with self.refused("choose its template"):
            self.step(flow, 'sms', kind='sms')
        lead_template = self.env['sms.template'].create({'name': 'Lead SMS', 'body': 'Hi',
                                                         'model_id': self.env['ir.model']._get_id('crm.lead')})
        with self.refused("is not one for contacts"):
            self.step(flow, 'sms', kind='sms', sms_template_id=lead_template.id)
        with self.refused("between 00:00 and 23:59"):
            self.step(flow, 'late', kind='tags', run_at_time=True, run_time=24.5)
        split = self.step(flow, 'split', kind='split', split_weight_a=70, split_weight_b=30)
        self.step(flow, 'a', kind='tags', parents=[split], branch='variant_a')
        with self.refused(r"a step on each of its variants \(missing: Variant B\)"):
            flow.action_start()
        self.step(flow, 'b', kind='tags', parents=[split], branch='variant_b')
        c = self.step(flow, 'c', kind='tags', parents=[split], branch='variant_c')
        with self.refused("Variant C, which the split never draws"):
            flow.action_start()
        c.unlink()
        flow.action_start()
        self.assertEqual(flow.state, 'running')

    def test_time_of_day(self):
        """ At 09:00 in the contact's time zone, else the company's; an unknown zone counts as none. """
        self.env.company.partner_id.tz = 'Asia/Tokyo'
        brussels = self.env['res.partner'].create({'name': 'In Brussels', 'tz': 'Europe/Brussels'})
        unknown = self.env['res.partner'].create({'name': 'On Mars'})
        self.env['res.partner'].flush_model()
        self.env.cr.execute("UPDATE res_partner SET tz = 'Mars/Olympus' WHERE id = %s", [unknown.id])
        unknown.invalidate_recordset(['tz'])
        flow = self.make_flow()
        first = self.step(flow, 'first', kind='tags', run_at_time=True, run_time=9.0,
                          tag_add_ids=[(6, 0, self.tag_vip.ids)])
        later = self.step(flow, 'later', kind='tags', parents=[first], delay=1, run_at_time=True, run_time=17.5,
                          tag_add_ids=[(6, 0, self.tag_vip.ids)])

        def at(after, hour, zone):
            """ The first time `hour` in `zone` not before `after` (UTC), in UTC. """
            local = pytz.utc.localize(after).astimezone(pytz.timezone(zone))
            day = local.date() if local.time() <= (datetime.min + timedelta(hours=hour)).time() else local.date() + timedelta(days=1)
            candidate = pytz.timezone(zone).localize(datetime.combine(day, datetime.min.time()) + timedelta(hours=hour))
            return candidate.astimezone(pytz.utc).replace(tzinfo=None)

        self.enrolled(flow, brussels | self.bob | unknown)
        zones = {brussels: 'Europe/Brussels', self.bob: 'Asia/Tokyo', unknown: 'Asia/Tokyo'}
        for partner, zone in zones.items():
            self.assertEqual(self.trace_of(first, partner).scheduled_at, at(self.start, 9, zone), partner.name)
        due = self.trace_of(first, brussels).scheduled_at
        if due > self.start:
            self.run_engine(due - timedelta(minutes=1))
            self.assertEqual(self.trace_of(first, brussels).state, 'scheduled')
        self.run_engine(max(self.trace_of(first, partner).scheduled_at for partner in zones))
        for partner, zone in zones.items():
            ran = self.trace_of(first, partner).done_at
            self.assertEqual(self.trace_of(later, partner).scheduled_at, at(ran + timedelta(days=1), 17.5, zone), partner.name)
