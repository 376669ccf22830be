import hashlib
import hmac
import json
import secrets
from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..tools import outgoing

# The branches of a random split, one per variant.
SPLIT_VARIANTS = [('variant_a', 'Variant A'), ('variant_b', 'Variant B'), ('variant_c', 'Variant C'),
                  ('variant_d', 'Variant D'), ('variant_e', 'Variant E')]
# An SMS the composer cancels: why, as a skip reason of the trace.
SMS_FAILURE_REASONS = {'sms_blacklist': 'blacklisted', 'sms_number_missing': 'no_phone',
                       'sms_number_format': 'invalid_phone', 'sms_duplicate': 'duplicate_phone'}


class MautomateFlowStepActions(models.AbstractModel):
    """ The step kinds that act on the contact, its lead or another system: SMS, field updates, server actions,
    leads, webhooks, and the random split. Each runs set-based for a batch of traces, like the other kinds. """
    _name = 'mautomate.flow.step.actions'
    _description = 'Automation Flow Step Actions'

    # send SMS
    sms_template_id = fields.Many2one('sms.template', 'SMS Template', domain=[('model', '=', 'res.partner')],
                                      ondelete='restrict', tracking=True)
    partner_model_id = fields.Many2one('ir.model', compute='_compute_partner_model_id',
                                       help="Contacts' model: the default of new server actions and SMS templates.")
    # update fields
    update_action_ids = fields.Many2many(
        'ir.actions.server', 'mautomate_flow_step_update_action_rel', 'step_id', 'action_id', 'Field Updates',
        domain=[('model_name', '=', 'res.partner'), ('state', '=', 'object_write')], groups='base.group_system',
        tracking=True, help="Each line sets one field of the contact (or of a record it links to), in the order of the lines.")
    # run a server action; server actions are the administrators' (as in Odoo): only they choose them
    server_action_id = fields.Many2one('ir.actions.server', domain=[('model_name', '=', 'res.partner')],
                                       ondelete='restrict', groups='base.group_system',
                                       tracking=True, help="Runs once for the batch of contacts reaching the step (its records).")
    # leads
    crm_team_id = fields.Many2one('crm.team', 'Sales Team', ondelete='restrict',
                                  tracking=True, help="Create a lead: its team. Convert: the opportunity's team. Assign: the team.")
    lead_name = fields.Char('Lead Title', tracking=True, help="The new lead is named after it and the contact; empty: the flow's name.")
    assign_salesperson = fields.Boolean(
        'Assign a Salesperson', default=True,
        tracking=True,
        help="Also give the lead to a member of the team as CRM's assignment does: in turn among the members who take "
             "automatic assignment, whose assignment domain matches it and who have capacity left today.")
    # webhook
    # The URL may carry the receiver's credentials: managers' only, as the secret.
    webhook_url = fields.Char('Webhook URL', groups='mautomate_marketing.group_mautomate_manager',
                              tracking=True, help="Receives a POST with the contact, the flow, the step and the trace as JSON. Only "
                                                  "http(s) to public addresses on ports 80 and 443, unless an administrator allows "
                                                  "the host in the Settings.")
    webhook_secret = fields.Char(
        'Signing Secret', compute='_compute_webhook_secret', store=True, readonly=False, copy=False,
        groups='mautomate_marketing.group_mautomate_manager',
        help="The X-Mautomate-Signature header holds sha256=<HMAC-SHA256 of the body with this secret, in hex>.")
    webhook_timeout = fields.Integer('Timeout (seconds)', default=10, tracking=True)
    # random split
    split_weight_a = fields.Integer('Variant A (%)', tracking=True)
    split_weight_b = fields.Integer('Variant B (%)', tracking=True)
    split_weight_c = fields.Integer('Variant C (%)', tracking=True)
    split_weight_d = fields.Integer('Variant D (%)', tracking=True)
    split_weight_e = fields.Integer('Variant E (%)', tracking=True)

    @api.depends('kind')
    def _compute_webhook_secret(self):
        # Each webhook step its own secret, from its creation (a copy gets a new one).
        for step in self:
            step.webhook_secret = step.webhook_secret or (secrets.token_hex(32) if step.kind == 'webhook' else False)

    def _compute_partner_model_id(self):
        self.partner_model_id = self.env['ir.model']._get_id('res.partner')

    def _check_action_settings(self):
        self.ensure_one()
        if self.kind == 'sms' and not self.sms_template_id:
            raise ValidationError(self.env._("Step %s sends an SMS: choose its template.", self.name))
        if self.kind == 'sms' and self.sms_template_id.model != 'res.partner':
            raise ValidationError(self.env._("Step %(step)s: the SMS template \"%(template)s\" is not one for contacts.",
                                             step=self.name, template=self.sms_template_id.name))
        step = self.sudo()
        if self.kind == 'update' and not step.update_action_ids:
            raise ValidationError(self.env._("Step %s updates fields: add the fields to update.", self.name))
        for action in step.update_action_ids if self.kind == 'update' else ():
            if action.model_name != 'res.partner' or action.state != 'object_write' or not action.update_field_id:
                raise ValidationError(self.env._(
                    "Step %(step)s: \"%(action)s\" is not an update of a contact's field.", step=self.name, action=action.name))
        if self.kind == 'server_action' and not step.server_action_id:
            raise ValidationError(self.env._("Step %s runs a server action: choose it.", self.name))
        if self.kind == 'server_action' and step.server_action_id.model_name != 'res.partner':
            raise ValidationError(self.env._(
                "Step %(step)s: the server action \"%(action)s\" runs on %(model)s; a flow runs actions on contacts only.",
                step=self.name, action=step.server_action_id.name, model=step.server_action_id.model_id.name))
        if self.kind == 'assign' and not self.crm_team_id:
            raise ValidationError(self.env._("Step %s assigns leads to a sales team: choose the team.", self.name))
        if self.kind == 'webhook':
            if not (step.webhook_url or '').strip():
                raise ValidationError(self.env._("Step %s calls a webhook: give its URL.", self.name))
            Delivery = self.env['mautomate.webhook.delivery']
            try:
                outgoing.Target(step.webhook_url, Delivery._allowed_hosts())
            except outgoing.OutgoingRefused as refusal:
                raise ValidationError(self.env._("Step %(step)s: %(refusal)s", step=self.name,
                                                 refusal=Delivery._refusal_message(refusal))) from None
            if not 1 <= self.webhook_timeout <= 60:
                raise ValidationError(self.env._("Step %s: the webhook timeout is between 1 and 60 seconds.", self.name))
        if self.kind == 'split':
            weights = [self[f'split_weight_{branch[-1]}'] for branch, _label in SPLIT_VARIANTS]
            if any(weight < 0 for weight in weights):
                raise ValidationError(self.env._("Step %s: the weight of a variant cannot be negative.", self.name))
            if not any(weights):
                raise ValidationError(self.env._("Step %s splits at random: give its variants a weight.", self.name))
            if sum(weights) != 100:
                raise ValidationError(self.env._("Step %(step)s: the weights of the variants add up to %(total)s%%, not 100%%.",
                                                 step=self.name, total=sum(weights)))

    def _contact_rounds(self, traces):
        """ The traces in rounds with one trace per contact each: a contact enrolled twice is served twice. """
        # Lists of ids: recordset unions in a loop are quadratic in the batch size.
        pending = [(trace.id, trace.participant_id.partner_id.id) for trace in traces]
        while pending:
            round_ids, later, seen = [], [], set()
            for trace_id, partner_id in pending:
                if partner_id in seen:
                    later.append((trace_id, partner_id))
                else:
                    seen.add(partner_id)
                    round_ids.append(trace_id)
            pending = later
            yield traces.browse(round_ids)

    # ------------------------------------------------------------
    # SMS
    # ------------------------------------------------------------

    def _flow_execute_sms(self, traces, now):
        """ Queue the template's SMS for each contact through Odoo's SMS composer (logged on the contact, sent
        by the SMS queue). Contacts without a valid number or with a blacklisted one get none. """
        results = {}
        self.env['res.partner'].flush_model(['mobile', 'phone', 'phone_sanitized'])
        self.env.cr.execute(SQL("""
            SELECT p.id,
                   CASE WHEN COALESCE(p.mobile, '') = '' AND COALESCE(p.phone, '') = '' THEN 'no_phone'
                        WHEN p.phone_sanitized IS NULL THEN 'invalid_phone'
                        WHEN EXISTS (SELECT 1 FROM phone_blacklist b WHERE b.active AND b.number = p.phone_sanitized)
                        THEN 'blacklisted' END
              FROM res_partner p WHERE p.id = ANY(%s)
        """, traces.participant_id.partner_id.ids))
        reasons = dict(self.env.cr.fetchall())
        to_send = traces.browse()
        for trace in traces:
            if reason := reasons[trace.participant_id.partner_id.id]:
                results[trace.id] = ('skipped', 'always', reason)
            else:
                to_send |= trace
        for round_traces in self._contact_rounds(to_send):
            partner_ids = round_traces.participant_id.partner_id.ids
            composer = self.env['sms.composer'].sudo().create({
                'composition_mode': 'mass',
                'res_model': 'res.partner',
                'res_ids': repr(partner_ids),
                'template_id': self.sms_template_id.id,
                'mass_keep_log': True,
                'mass_use_blacklist': True,
            })
            failures = {sms.partner_id.id: sms.failure_type for sms in composer._action_send_sms()
                        if sms.state != 'outgoing'}
            for trace in round_traces:
                failure = failures.get(trace.participant_id.partner_id.id, False)
                results[trace.id] = (('skipped', 'always', SMS_FAILURE_REASONS.get(failure, 'invalid_phone'))
                                     if failure is not False else ('done', 'always', None))
        if to_send:
            self.env.ref('sms.ir_cron_sms_scheduler_action').sudo()._trigger()
        return results

    # ------------------------------------------------------------
    # Field updates and server actions
    # ------------------------------------------------------------

    def _flow_execute_update(self, traces, now):
        """ Each line is an "Update Record" server action on contacts: a fixed value is written on all the
        batch's contacts at once; a computed one is evaluated by the action for each contact. """
        partners = traces.participant_id.partner_id.sudo()
        for action in self.update_action_ids.sudo().sorted():
            if action.evaluation_type == 'equation':
                # Odoo evaluates the expression for the action's one `record`: one run per contact.
                for partner in partners:
                    action.with_context(active_model='res.partner', active_id=partner.id, active_ids=partner.ids).run()
                continue
            path = action.update_path.split('.')
            targets = partners.mapped('.'.join(path[:-1])) if len(path) > 1 else partners
            targets.write({action.update_field_id.name: action._eval_value()[action.id]})
        return dict.fromkeys(traces.ids, ('done', 'always', None))

    def _flow_execute_server_action(self, traces, now):
        self.server_action_id.sudo().with_context(
            active_model='res.partner', active_ids=traces.participant_id.partner_id.ids).run()
        return dict.fromkeys(traces.ids, ('done', 'always', None))

    # ------------------------------------------------------------
    # Leads
    # ------------------------------------------------------------

    def _open_leads(self, partners):
        """ {contact id: its latest open lead}: active and not won. """
        return {partner.id: self.env['crm.lead'].browse(lead_id) for partner, lead_id in self.env['crm.lead'].sudo()._read_group(
            [('partner_id', 'in', partners.ids), ('active', '=', True),
             '|', ('stage_id', '=', False), ('stage_id.is_won', '=', False)],
            ['partner_id'], ['id:max'])}

    def _participant_leads(self, traces):
        """ {trace id: lead} for the traces whose participant has a lead still open (its own, else the contact's
        latest open lead, which becomes the participant's). """
        open_leads = self._open_leads(traces.participant_id.partner_id)
        leads = {}
        for trace in traces:
            participant = trace.participant_id
            lead = participant.lead_id
            if not lead.active or lead.stage_id.is_won:
                lead = open_leads.get(participant.partner_id.id)
            if lead:
                participant.lead_id = lead
                leads[trace.id] = lead
        return leads

    def _flow_execute_lead(self, traces, now):
        """ A lead for each contact without an open one; a contact with one keeps it (the step is skipped). The
        lead becomes the participant's, for the next steps. """
        open_leads = self._open_leads(traces.participant_id.partner_id)
        by_partner = defaultdict(traces.browse)
        for trace in traces:
            by_partner[trace.participant_id.partner_id] |= trace
        new_partners = [partner for partner in by_partner if partner.id not in open_leads]
        title = self.lead_name or self.flow_id.name
        leads = self.env['crm.lead'].sudo().create([{
            'name': f"{title} - {partner.display_name}",
            'partner_id': partner.id,
            # Not the engine's user: the contact's salesperson, else the team's assignment.
            'user_id': partner.user_id.id,
            'team_id': self.crm_team_id.id or partner.team_id.id,
        } for partner in new_partners])
        created = dict(zip(new_partners, leads, strict=True))
        results = {}
        for partner, partner_traces in by_partner.items():
            for trace in partner_traces:
                trace.participant_id.lead_id = created.get(partner) or open_leads[partner.id]
                # A contact enrolled twice in the batch: its first trace creates the lead, the others find it.
                new = partner in created and trace == partner_traces[0]
                results[trace.id] = ('done', 'always', None) if new else ('skipped', 'always', 'lead_exists')
        return results

    def _flow_execute_convert(self, traces, now):
        """ The participant's lead becomes an opportunity (of the step's team, if any). """
        leads = self._participant_leads(traces)
        by_customer = defaultdict(lambda: self.env['crm.lead'].sudo())
        for trace in traces.filtered(lambda trace: trace.id in leads):
            lead = leads[trace.id]
            by_customer[lead.partner_id or trace.participant_id.partner_id] |= lead
        for customer, customer_leads in by_customer.items():
            customer_leads.convert_opportunity(customer, team_id=self.crm_team_id.id)
        return {trace.id: ('done', 'always', None) if trace.id in leads else ('skipped', 'always', 'no_lead')
                for trace in traces}

    def _flow_execute_assign(self, traces, now):
        """ The participant's lead goes to the step's team and, if asked, to a salesperson as crm's assignment gives
        one (a lead whose salesperson is a member of the team keeps it). """
        leads = self._participant_leads(traces)
        all_leads = self.env['crm.lead'].sudo().browse({lead.id for lead in leads.values()})
        team = self.crm_team_id.sudo()
        all_leads._handle_salesmen_assignment(team_id=team.id)
        if self.assign_salesperson:
            all_leads.filtered(lambda lead: lead.user_id not in team.member_ids)._mautomate_assign_salespeople()
        return {trace.id: ('done', 'always', None) if trace.id in leads else ('skipped', 'always', 'no_lead')
                for trace in traces}

    # ------------------------------------------------------------
    # Webhook
    # ------------------------------------------------------------

    def _webhook_payload(self, trace):
        partner, lead = trace.participant_id.partner_id, trace.participant_id.lead_id
        return {
            'trace_id': trace.id,
            'participant_id': trace.participant_id.id,
            'flow': {'id': self.flow_id.id, 'name': self.flow_id.name},
            'step': {'id': self.id, 'name': self.name},
            'contact': {'id': partner.id, 'name': partner.name, 'email': partner.email or None,
                        'phone': partner.mobile or partner.phone or None},
            'lead': {'id': lead.id, 'name': lead.name} if lead else None,
        }

    def _webhook_sign(self, body):
        return 'sha256=' + hmac.new(self.sudo().webhook_secret.encode(), body, hashlib.sha256).hexdigest()

    def _flow_execute_webhook(self, traces, now):
        """ Queue a signed POST of each trace's JSON to the URL: the webhook sender makes the calls, each committed
        on its own, and the trace waits for its call (processing): a 2xx answer makes it done and schedules the next
        steps; another answer, a refused address or a network error is its failure, tried again later as any step's.
        The trace id in the body lets the receiver ignore a call it already had. """
        self.env['mautomate.webhook.delivery'].sudo().create([{
            'trace_id': trace.id,
            'step_id': self.id,
            'body': json.dumps(self._webhook_payload(trace), sort_keys=True, separators=(',', ':')),
        } for trace in traces])
        self.env['mautomate.webhook.delivery']._wake()
        return dict.fromkeys(traces.ids, ('processing', None, None))

    # ------------------------------------------------------------
    # Random split
    # ------------------------------------------------------------

    def _split_weights(self):
        """ [(variant branch, weight)] of the variants with a weight. """
        return [(branch, self[f'split_weight_{branch[-1]}']) for branch, _label in SPLIT_VARIANTS
                if self[f'split_weight_{branch[-1]}'] > 0]

    def _split_draw(self, trace_id):
        """ A number in [0, 100) drawn from the trace: the same for a trace each time, uniform over traces. """
        return int.from_bytes(hashlib.sha256(f'mautomate-split-{trace_id}'.encode()).digest()[:8], 'big') % 10000 / 100

    def _flow_execute_split(self, traces, now):
        weights = self._split_weights()
        results = {}
        for trace in traces:
            draw, variant = self._split_draw(trace.id), weights[-1][0]
            for branch, weight in weights:
                if draw < weight:
                    variant = branch
                    break
                draw -= weight
            results[trace.id] = ('done', variant, None)
        return results
