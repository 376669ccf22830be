import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import SQL

from ..tools import outgoing
from ..tools.domains import parse_domain
from ..tools.url_patterns import PATH_QUERY, glob_to_like
from .mautomate_event import EVENT_TYPES
from .mautomate_flow_engine import BRANCHING_KINDS

# The branches of a random split, one per variant.
SPLIT_VARIANTS = [('variant_a', 'Variant A'), ('variant_b', 'Variant B'), ('variant_c', 'Variant C'),
                  ('variant_d', 'Variant D'), ('variant_e', 'Variant E')]
# An SMS the composer cancels: why, as a skip reason of the trace.
SMS_FAILURE_REASONS = {'sms_blacklist': 'blacklisted', 'sms_number_missing': 'no_phone',
                       'sms_number_format': 'invalid_phone', 'sms_duplicate': 'duplicate_phone'}

# Edits that change where the participants at a step go next.
ROUTING_FIELDS = {'kind', 'flow_id', 'parent_ids', 'child_ids', 'branch'}

BRANCHES = [('always', 'Always'), ('yes', 'Yes'), ('no', 'No'), ('timeout', 'Timeout'), *SPLIT_VARIANTS]
DELAY_UNITS = [('minutes', 'Minutes'), ('hours', 'Hours'), ('days', 'Days'), ('weeks', 'Weeks'), ('months', 'Months')]
STEP_KINDS = [
    ('email', 'Send E-mail'),
    ('activity', 'Schedule Activity'),
    ('tags', 'Add/Remove Tags'),
    ('score', 'Add Score Points'),
    ('condition', 'Condition'),
    ('wait', 'Wait for Event'),
    ('exit', 'Exit'),
    ('sms', 'Send SMS'),
    ('update', 'Update Fields'),
    ('server_action', 'Run Server Action'),
    ('lead', 'Create Lead'),
    ('convert', 'Convert to Opportunity'),
    ('assign', 'Assign to Sales Team'),
    ('webhook', 'Call Webhook'),
    ('split', 'Random Split'),
]


class MautomateFlowStep(models.Model):
    """ A step of a flow. Steps form a graph without cycles: a step follows one or more parents (paths
    merge), on the branch it names, after its delay.

    Besides mails, activities, tags, scores, conditions and waits, a step acts on the contact, its lead or another
    system: SMS, field updates, server actions, leads, webhooks, and the random split; each kind runs set-based for
    a batch of traces.

    A flow edited while participants go through it must not strand them: while participants are at a step
    (scheduled or waiting), the step keeps its kind and its flow, and each of its outcomes that leads to a next
    step keeps leading to one; deleting the step itself is refused. """
    _name = 'mautomate.flow.step'
    _inherit = ['mautomate.flow.part']
    _description = 'Automation Flow Step'
    _order = 'flow_id, sequence, id'

    name = fields.Char(required=True, translate=True, tracking=True)
    flow_id = fields.Many2one('mautomate.flow', required=True, ondelete='cascade', index=True)
    flow_state = fields.Selection(related='flow_id.state')
    target_model = fields.Char(compute='_compute_target_model',
                               help="The model of the flow's participants: what the condition's domain and the templates are of.")
    sequence = fields.Integer(default=10)
    parent_ids = fields.Many2many('mautomate.flow.step', 'mautomate_flow_step_parent_rel', 'step_id', 'parent_id', 'After',
                                  tracking=True, help="The steps this one follows. Several: paths merge here, and the step runs once. "
                                                      "None: the flow starts here.")
    child_ids = fields.Many2many('mautomate.flow.step', 'mautomate_flow_step_parent_rel', 'parent_id', 'step_id', 'Next Steps')
    branch = fields.Selection(BRANCHES, required=True, default='always',
                              tracking=True, help="After a condition: its yes or no branch; after a wait for an event: yes when the event "
                                                  "came, timeout when it did not; after a random split: the variant drawn. After any other "
                                                  "step the step always follows.")
    delay = fields.Integer(default=0, tracking=True, help="How long after its parent (or the entry in the flow) the step runs.")
    delay_unit = fields.Selection(DELAY_UNITS, required=True, default='days', tracking=True)
    run_at_time = fields.Boolean('At a Time of Day', tracking=True, help="After its delay, the step waits for this time of day in the "
                                                                         "contact's time zone (else the company's, else UTC).")
    run_time = fields.Float('Time of Day', default=9.0, tracking=True)
    kind = fields.Selection(STEP_KINDS, required=True, default='email', tracking=True)
    depth = fields.Integer(compute='_compute_depth', help="The longest path from a first step.")
    outline_name = fields.Char('Step', compute='_compute_depth')
    # send e-mail: the step's own subject and body, or a template picked instead
    mail_subject = fields.Char('Subject', tracking=True, help="Placeholders such as {{ object.name }} may be used.")
    mail_body = fields.Html('Body', sanitize='email_outgoing')
    mail_own_template_id = fields.Many2one('mail.template', 'Own Template', readonly=True, copy=False,
                                           ondelete='set null',
                                           help="Made from the step's subject and body, and kept in step with them.")
    mail_template_id = fields.Many2one('mail.template', 'Or Pick a Template', ondelete='restrict',
                                       domain=[('model', 'in', ('res.partner', 'crm.lead'))],
                                       tracking=True, help="Sends this template instead of the step's own subject and body: a "
                                                           "template of contacts; in a flow of leads, a template of leads.")
    mailing_id = fields.Many2one('mailing.mailing', readonly=True, copy=False, ondelete='set null',
                                 help="Holds the opens, clicks and bounces of this step's mails.")
    # schedule activity
    activity_type_id = fields.Many2one('mail.activity.type', ondelete='restrict', tracking=True)
    activity_summary = fields.Char(translate=True, tracking=True)
    activity_days = fields.Integer('Activity Due In (days)', default=0, tracking=True)
    # tags
    tag_add_ids = fields.Many2many('res.partner.category', 'mautomate_flow_step_tag_add_rel', 'step_id', 'tag_id', 'Add Tags',
                                   tracking=True)
    tag_remove_ids = fields.Many2many('res.partner.category', 'mautomate_flow_step_tag_remove_rel', 'step_id', 'tag_id',
                                      'Remove Tags', tracking=True)
    # score points
    score_points = fields.Integer('Points', tracking=True)
    # condition
    condition_type = fields.Selection([('domain', 'Contact Matches'), ('event', 'Event Since a Step'),
                                       ('url', 'Visited a Page Since a Step')], default='domain', tracking=True)
    condition_domain = fields.Char('Contact Domain', default='[]', tracking=True)
    condition_event_type = fields.Selection(EVENT_TYPES, 'Event Type', tracking=True)
    condition_url = fields.Char('Page URL', tracking=True, help="A page view of a URL matching this pattern: '*' is any text. '/pricing*' "
                                                                "matches the path on any site; 'https://shop.example.com/*' the whole URL.")
    condition_step_id = fields.Many2one(
        'mautomate.flow.step', 'Since Step', ondelete='restrict',
        tracking=True, help="The event counts if it came after this step ran for the participant. For a step sending e-mail, only the "
                            "e-mail events of its own mails count (e.g. opened this mail).")
    # wait for event
    wait_event_type = fields.Selection(EVENT_TYPES, 'Wait For', tracking=True)
    wait_timeout = fields.Integer('Timeout', default=0, tracking=True)
    wait_timeout_unit = fields.Selection(DELAY_UNITS, default='days', tracking=True)
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
    # figures
    trace_ids = fields.One2many('mautomate.flow.trace', 'step_id', 'Traces')
    waiting_count = fields.Integer('Waiting', compute='_compute_figures')
    done_count = fields.Integer('Done', compute='_compute_figures')
    skipped_count = fields.Integer('Skipped', compute='_compute_figures')
    skipped_reasons = fields.Char('Skipped Because', compute='_compute_figures',
                                  help="How many participants skipped the step, by reason.")
    error_count = fields.Integer('Errors', compute='_compute_figures')
    opened_count = fields.Integer('Opened', compute='_compute_mail_figures', help="Mails of this step opened.")
    clicked_count = fields.Integer('Clicked', compute='_compute_mail_figures',
                                   help="Mails of this step with a link clicked.")

    @api.depends('flow_id.target')
    def _compute_target_model(self):
        for step in self:
            step.target_model = step.flow_id._target_model()

    @api.depends('parent_ids', 'name')
    def _compute_depth(self):
        for step in self:
            depth, level = 0, step.parent_ids
            while level and depth < 50:
                depth += 1
                level = level.parent_ids
            step.depth = depth
            step.outline_name = ("\u2003" * (depth - 1) + "\u21b3 " if depth else "") + (step.name or '')

    @api.depends('trace_ids.state', 'trace_ids.skip_reason')
    def _compute_figures(self):
        Trace = self.env['mautomate.flow.trace']
        counts, skipped = defaultdict(int), defaultdict(dict)
        for step, state, reason, count in Trace._read_group(
                [('step_id', 'in', self._origin.ids)], ['step_id', 'state', 'skip_reason'], ['__count']):
            counts[step.id, state] += count
            if state == 'skipped':
                skipped[step.id][reason] = count
        reasons = dict(Trace._fields['skip_reason']._description_selection(self.env))
        for step in self:
            step_id = step._origin.id
            step.waiting_count = counts[step_id, 'scheduled'] + counts[step_id, 'waiting'] + counts[step_id, 'processing']
            step.done_count = counts[step_id, 'done']
            step.skipped_count = counts[step_id, 'skipped']
            step.error_count = counts[step_id, 'error']
            labelled = [(count, reasons.get(reason) or self.env._("Other")) for reason, count in skipped[step_id].items()]
            step.skipped_reasons = ", ".join(f"{count} {label}" for count, label in
                                             sorted(labelled, key=lambda item: (-item[0], item[1])))

    @api.depends('mailing_id')
    def _compute_mail_figures(self):
        """ Opens and clicks as the mailing counts them (mass_mailing's statistics), for all steps at once;
        as superuser: the figures are counts, the mailing traces are the e-mail marketers'. """
        opened, clicked = defaultdict(int), defaultdict(int)
        if mailings := self._origin.mailing_id:
            for mailing, status, count, click_count in self.env['mailing.trace'].sudo()._read_group(
                    [('mass_mailing_id', 'in', mailings.ids)], ['mass_mailing_id', 'trace_status'],
                    ['__count', 'links_click_datetime:count']):
                if status in ('open', 'reply'):
                    opened[mailing.id] += count
                clicked[mailing.id] += click_count
        for step in self:
            step.opened_count = opened[step._origin.mailing_id.id]
            step.clicked_count = clicked[step._origin.mailing_id.id]

    @api.constrains('parent_ids', 'flow_id')
    def _check_graph(self):
        for step in self:
            if step.parent_ids.flow_id - step.flow_id:
                raise ValidationError(self.env._("Step %s can only follow steps of its own flow.", step.name))
        if self._has_cycle('parent_ids'):
            raise ValidationError(self.env._("The steps of a flow cannot loop: a step cannot follow itself, directly or not."))

    @api.constrains('kind', 'mail_template_id', 'delay', 'condition_type', 'condition_domain', 'condition_event_type',
                    'condition_url', 'activity_type_id', 'wait_event_type', 'wait_timeout', 'run_at_time', 'run_time',
                    'sms_template_id', 'update_action_ids', 'server_action_id', 'crm_team_id', 'webhook_url',
                    'webhook_timeout', 'split_weight_a', 'split_weight_b', 'split_weight_c', 'split_weight_d',
                    'split_weight_e')
    def _check_kind_settings(self):
        for step in self:
            if step.delay < 0 or step.wait_timeout < 0:
                raise ValidationError(self.env._("Step %s: delays cannot be negative.", step.name))
            if step.run_at_time and not 0 <= step.run_time < 24:
                raise ValidationError(self.env._("Step %s: the time of day is between 00:00 and 23:59.", step.name))
            if step.kind == 'email' and not step.mail_template_id and not (step.mail_subject and step.mail_body):
                raise ValidationError(self.env._("Step %s sends an e-mail: write its subject and body, or choose its "
                                                 "template.", step.name))
            if step.kind == 'email' and step.mail_template_id and step.mail_template_id.model != step.flow_id._target_model():
                raise ValidationError(self.env._("Step %s: the template must be one of the flow's contacts or leads.",
                                                 step.name))
            if step.kind == 'activity' and not step.activity_type_id:
                raise ValidationError(self.env._("Step %s schedules an activity: choose its type.", step.name))
            if step.kind == 'wait' and (not step.wait_event_type or step.wait_timeout <= 0):
                raise ValidationError(self.env._("Step %s waits for an event: choose its type and a timeout.", step.name))
            if step.kind == 'condition' and step.condition_type == 'event' and not step.condition_event_type:
                raise ValidationError(self.env._("Step %s: choose the event type of the condition.", step.name))
            if step.kind == 'condition' and step.condition_type == 'url' and not (step.condition_url or '').strip():
                raise ValidationError(self.env._("Step %s: choose the URL of the pages the condition looks for.", step.name))
            if step.kind == 'condition' and step.condition_type == 'domain':
                try:
                    step.flow_id._check_domain(step.flow_id._target_model(), step.condition_domain)
                except Exception as error:  # any parse, field or access error is the user's to fix
                    raise ValidationError(self.env._("Step %(step)s: the domain is not valid (%(error)s).",
                                                     step=step.name, error=error)) from error
            step._check_action_settings()

    @api.constrains('kind', 'condition_type', 'condition_domain', 'flow_id')
    def _check_domain_author(self):
        self.filtered(lambda step: step.kind == 'condition' and step.condition_type == 'domain').flow_id._check_domain_author()

    def _flow_part_noun(self):
        return self.env._("Step")

    @api.model_create_multi
    def create(self, vals_list):
        steps = super().create(vals_list)
        self.env.registry.clear_cache()
        steps._sync_own_templates()
        steps._ensure_mailings()
        (steps | steps.parent_ids)._flow_check_running_timeouts()
        return steps

    def write(self, vals):
        routing = bool(ROUTING_FIELDS & set(vals))
        if routing:
            parents_before = self.parent_ids
            pending = (self | self.parent_ids)._flow_pending_steps()
            moved = (pending & self).filtered(lambda step: ('kind' in vals and step.kind != vals['kind'])
                                              or ('flow_id' in vals and step.flow_id.id != vals['flow_id']))
            if moved:
                raise ValidationError(self.env._(
                    "Participants are at step %s: it cannot change its kind or flow until they have passed it.", moved[0].name))
            before = {step: step._flow_covered_outcomes() for step in pending}
        result = super().write(vals)
        if {'kind', 'wait_event_type', 'flow_id'} & set(vals):
            self.env.registry.clear_cache()
        if {'kind', 'mail_subject', 'mail_body', 'flow_id'} & set(vals):
            self._sync_own_templates()
        if {'kind', 'mail_template_id', 'mail_subject', 'mail_body'} & set(vals):
            self._ensure_mailings()
        if routing:
            pending.invalidate_recordset(['child_ids'])
            self._flow_check_outcomes_kept(before, {step: step._flow_covered_outcomes() for step in pending})
            (self | parents_before | self.parent_ids).exists()._flow_check_running_timeouts()
        return result

    def _mail_template(self):
        """ The template this step sends: the one picked, else the one made from its own subject and body. """
        self.ensure_one()
        return self.mail_template_id or self.mail_own_template_id

    def _sync_own_templates(self, check_author=True):
        """ The template behind the subject and body written in the step, made or updated to match them, of the
        flow's participants' model. Dynamic content is checked as its author writes it: mail's own rule for templates. """
        Template = self.env['mail.template']
        for step in self.filtered(lambda step: step.kind == 'email' and (step.mail_subject or step.mail_body)):
            model = step.flow_id._target_model()
            if check_author and not self.env.su and not self.env.user.has_group('mail.group_mail_template_editor') and (
                    Template._has_unsafe_expression_template_inline_template(step.mail_subject, model)
                    or Template._has_unsafe_expression_template_qweb(step.mail_body, model)):
                raise AccessError(self.env._("Step %(step)s: only members of %(group)s may write such placeholders.",
                                             step=step.name, group=self.env.ref('mail.group_mail_template_editor').name))
            responsible = step.flow_id.user_id.sudo()
            vals = {
                'name': f"{step.flow_id.name}: {step.name}",
                'model_id': self.env['ir.model']._get_id(model),
                'subject': step.mail_subject,
                'body_html': step.mail_body,
                'email_from': responsible.email_formatted or self.env.company.email_formatted,
            }
            if step.mail_own_template_id:
                step.mail_own_template_id.sudo().write(vals)
            else:
                step.sudo().mail_own_template_id = Template.sudo().create(vals)
            if step.mailing_id and not step.mail_template_id:
                step.mailing_id.sudo().write({'subject': step.mail_subject or step.name, 'body_html': step.mail_body})

    def _ensure_mailings(self):
        # Made with the step, not at its first mail: two engine runs would each make one at once.
        for step in self.filtered(lambda step: step.kind == 'email' and step._mail_template()):
            step._get_mailing()

    @api.ondelete(at_uninstall=False)
    def _unlink_except_waiting_participants(self):
        self.env['mautomate.flow.trace'].flush_model()
        pending = self.env['mautomate.flow.trace'].search_count(
            [('step_id', 'in', self.ids), ('state', 'in', ('scheduled', 'waiting', 'processing'))], limit=1)
        if pending:
            raise ValidationError(self.env._(
                "Participants are waiting at these steps: deleting them would strand them. Pause or stop the flow and "
                "let them pass first."))

    def unlink(self):
        pending = (self.parent_ids - self)._flow_pending_steps()
        self._flow_check_outcomes_kept({step: step._flow_covered_outcomes() for step in pending},
                                       {step: step._flow_covered_outcomes(step.child_ids - self) for step in pending})
        for parent in (self.parent_ids - self).filtered(lambda step: step.flow_id.state == 'running'):
            parent._flow_check_timeout_branch(parent.child_ids - self)
        own_templates = self.mail_own_template_id
        result = super().unlink()
        # A step's own template goes with it, unless another step picked it.
        picked = self.search([('mail_template_id', 'in', own_templates.ids)]).mail_template_id
        (own_templates - picked).sudo().unlink()
        self.env.registry.clear_cache()
        return result

    # ------------------------------------------------------------
    # Edits of running flows
    # ------------------------------------------------------------

    def _flow_check_running_timeouts(self):
        """ The waits for an event of running flows among these steps lead somewhere when the event does not come. """
        for step in self.filtered(lambda step: step.flow_id.state == 'running'):
            step._flow_check_timeout_branch()

    def _flow_check_timeout_branch(self, children=None):
        """ A wait for an event needs a next step on its timeout branch: without one, whoever the event never
        comes for leaves the flow unnoticed. """
        self.ensure_one()
        if self.kind == 'wait' and 'timeout' not in self._flow_covered_outcomes(children):
            raise ValidationError(self.env._(
                "Step %(step)s of flow %(flow)s waits for an event: add a step on its \"timeout\" branch, for the "
                "participants the event never comes for. To add a wait to a running flow, pause the flow first.",
                step=self.name, flow=self.flow_id.name))

    def _flow_pending_steps(self):
        """ The steps of self where participants are scheduled or waiting. """
        if not self.ids:
            return self.browse()
        self.env['mautomate.flow.trace'].flush_model(['step_id', 'state'])
        groups = self.env['mautomate.flow.trace'].sudo()._read_group(
            [('step_id', 'in', self.ids), ('state', 'in', ('scheduled', 'waiting', 'processing'))], ['step_id'])
        return self.browse([step.id for step, in groups])

    def _flow_outcomes(self):
        """ The outcomes a participant can leave this step by. """
        self.ensure_one()
        if self.kind == 'split':
            return tuple(branch for branch, _weight in self._split_weights())
        return {'condition': ('yes', 'no'), 'wait': ('yes', 'timeout')}.get(self.kind, ('always',))

    def _flow_covered_outcomes(self, children=None):
        """ The outcomes of this step that lead to a next step. """
        children = self.child_ids if children is None else children
        branching = self.kind in BRANCHING_KINDS
        return {outcome for outcome in self._flow_outcomes()
                if children.filtered(lambda child, outcome=outcome: not branching or child.branch in (outcome, 'always'))}

    def _flow_check_outcomes_kept(self, before, after):
        labels = dict(self._fields['branch']._description_selection(self.env))
        for step, outcomes in before.items():
            if lost := sorted(outcomes - after[step]):
                raise ValidationError(self.env._(
                    "Participants are at step %(step)s: its \"%(branch)s\" branch must keep a next step, or they would "
                    "leave the flow there. Change it once they have passed the step.", step=step.name, branch=labels[lost[0]]))

    # ------------------------------------------------------------
    # Execution (by the engine, as superuser, for a batch of traces)
    # ------------------------------------------------------------

    def _flow_execute(self, traces, now):
        """ Run this step for `traces` (of this step), set-based. Returns {trace id: (state, outcome, skip reason)},
        or for a trace that failed alone, the exception (the engine tries it again). """
        self.ensure_one()
        return getattr(self, f'_flow_execute_{self.kind}')(traces, now)

    def _flow_execute_exit(self, traces, now):
        return dict.fromkeys(traces.ids, ('done', 'always', None))

    def _flow_execute_email(self, traces, now):
        """ Render the template for each contact and queue it as a mail of this step's mailing, with its
        mailing trace: opens, clicks and bounces come back as events. Blacklisted contacts, contacts who
        opted out of tracking or of a mailing list and contacts without an e-mail get none. """
        if self.flow_id.target == 'lead':
            return self._flow_execute_email_lead(traces, now)
        results = {}
        self.env.cr.execute(SQL("""
            SELECT p.id, p.email_normalized,
                   CASE WHEN p.email_normalized IS NULL THEN 'no_email'
                        WHEN EXISTS (SELECT 1 FROM mail_blacklist b WHERE b.active AND b.email = p.email_normalized)
                        THEN 'blacklisted'
                        WHEN COALESCE(p.mautomate_no_tracking, FALSE) THEN 'opted_out'
                        -- unsubscribed from a mailing list: no marketing mail at all
                        WHEN EXISTS (SELECT 1 FROM mailing_subscription s JOIN mailing_contact c ON c.id = s.contact_id
                                      WHERE s.opt_out AND c.email_normalized = p.email_normalized) THEN 'opted_out' END
              FROM res_partner p WHERE p.id = ANY(%s)
        """, traces.participant_id.partner_id.ids))
        contacts = {partner_id: (email, reason) for partner_id, email, reason in self.env.cr.fetchall()}
        to_send = []
        for trace in traces:
            if reason := contacts[trace.participant_id.partner_id.id][1]:
                results[trace.id] = ('skipped', 'always', reason)
            else:
                to_send.append(trace.id)
        mailing = self._get_mailing()
        template = self._mail_template().sudo()
        for round_traces in self._contact_rounds(traces.browse(to_send)):
            pairs = [(trace.id, trace.participant_id.partner_id.id) for trace in round_traces]
            mails = template.send_mail_batch([partner_id for _trace_id, partner_id in pairs],
                                             email_values={'mailing_id': mailing.id})
            mail_by_partner = {mail.res_id: mail.id for mail in mails}
            for mail in mails.filtered(lambda mail: not mail.email_to and not mail.recipient_ids):
                # A template without recipients: the mail goes to its contact.
                mail.recipient_ids = [(4, mail.res_id)]
            self.env['mailing.trace'].sudo().create([{
                'trace_type': 'mail',
                'mail_mail_id': mail_by_partner[partner_id],
                'mass_mailing_id': mailing.id,
                'model': 'res.partner',
                'res_id': partner_id,
                'email': contacts[partner_id][0],
                'trace_status': 'outgoing',
            } for _trace_id, partner_id in pairs])
            # One statement for the batch: assigning each trace its mail through the ORM flushed one UPDATE per trace.
            self.env['mautomate.flow.trace'].flush_model(['mail_mail_id'])
            self.env.cr.execute(SQL("""
                UPDATE mautomate_flow_trace t SET mail_mail_id = v.mail_id
                  FROM unnest(%s::int4[], %s::int4[]) AS v(id, mail_id) WHERE t.id = v.id
            """, round_traces.ids, [mail_by_partner[partner_id] for _trace_id, partner_id in pairs]))
            round_traces.invalidate_recordset(['mail_mail_id'])
            results.update(dict.fromkeys(round_traces.ids, ('done', 'always', None)))
        return results

    def _flow_execute_email_lead(self, traces, now):
        """ Flows of leads: the template (of leads) for each lead, to the lead's e-mail, as in _flow_execute_email;
        blacklisted e-mails, leads of contacts who opted out and leads without an e-mail get none. """
        self.env.cr.execute(SQL("""
            SELECT l.id, l.email_normalized,
                   CASE WHEN l.email_normalized IS NULL THEN 'no_email'
                        WHEN EXISTS (SELECT 1 FROM mail_blacklist b WHERE b.active AND b.email = l.email_normalized)
                        THEN 'blacklisted'
                        WHEN COALESCE(p.mautomate_no_tracking, FALSE) THEN 'opted_out' END
              FROM crm_lead l LEFT JOIN res_partner p ON p.id = l.partner_id WHERE l.id = ANY(%s)
        """, traces.participant_id.lead_id.ids))
        leads = {lead_id: (email, reason) for lead_id, email, reason in self.env.cr.fetchall()}
        results = {trace.id: ('skipped', 'always', leads[trace.participant_id.lead_id.id][1])
                   for trace in traces if leads[trace.participant_id.lead_id.id][1]}
        to_send = traces.filtered(lambda trace: trace.id not in results)
        mailing = self._get_mailing()
        while to_send:
            # One mail per lead per round, as for contacts.
            round_traces = to_send.browse(list({trace.participant_id.lead_id.id: trace.id for trace in reversed(to_send)}.values()))
            to_send -= round_traces
            lead_ids = round_traces.participant_id.lead_id.ids
            mails = self._mail_template().sudo().send_mail_batch(lead_ids, email_values={'mailing_id': mailing.id})
            mail_by_lead = {mail.res_id: mail for mail in mails}
            for mail in mails.filtered(lambda mail: not mail.email_to and not mail.recipient_ids):
                # A template without recipients: the mail goes to the lead's e-mail.
                mail.email_to = self.env['crm.lead'].browse(mail.res_id).email_from
            self.env['mailing.trace'].sudo().create([{
                'trace_type': 'mail',
                'mail_mail_id': mail_by_lead[lead_id].id,
                'mass_mailing_id': mailing.id,
                'model': 'crm.lead',
                'res_id': lead_id,
                'email': leads[lead_id][0],
                'trace_status': 'outgoing',
            } for lead_id in lead_ids])
            for trace in round_traces:
                trace.mail_mail_id = mail_by_lead[trace.participant_id.lead_id.id]
                results[trace.id] = ('done', 'always', None)
        return results

    def _get_mailing(self):
        """ The mailing of this step's mails (created at its first mail): it holds their statistics and
        gives them tracked links and an unsubscribe link; it is never sent itself. """
        if not self.mailing_id:
            template = self._mail_template().sudo()
            self.sudo().mailing_id = self.env['mailing.mailing'].sudo().create({
                'subject': template.subject or self.name,
                'mailing_model_id': self.env['ir.model']._get_id(self.flow_id._target_model()),
                'mailing_domain': "[('id', '=', 0)]",
                'body_html': template.body_html,
                'state': 'done',
                # Never sent itself: out of Email Marketing's lists, kanban and calendar, as an archived mailing.
                'active': False,
            })
        return self.mailing_id

    def _flow_execute_activity(self, traces, now):
        """ An activity for the salesperson: the lead's, else the contact's, else the flow's responsible. """
        vals_list, results = [], {}
        lead_model = self.env['ir.model']._get_id('crm.lead')
        partner_model = self.env['ir.model']._get_id('res.partner')
        for trace in traces:
            participant = trace.participant_id
            lead = participant.lead_id
            user = lead.user_id or participant.partner_id.user_id or self.flow_id.user_id
            if not user:
                results[trace.id] = ('skipped', 'always', 'no_salesperson')
                continue
            vals_list.append({
                'res_model_id': lead_model if lead else partner_model,
                'res_id': lead.id if lead else participant.partner_id.id,
                'activity_type_id': self.activity_type_id.id,
                'summary': self.activity_summary or self.activity_type_id.summary or self.name,
                'user_id': user.id,
                'date_deadline': fields.Date.to_date(now) + timedelta(days=self.activity_days),
            })
            results[trace.id] = ('done', 'always', None)
        self.env['mail.activity'].sudo().create(vals_list)
        return results

    def _flow_execute_tags(self, traces, now):
        commands = [(4, tag.id) for tag in self.tag_add_ids] + [(3, tag.id) for tag in self.tag_remove_ids]
        if commands:
            traces.participant_id.partner_id.sudo().write({'category_id': commands})
        return dict.fromkeys(traces.ids, ('done', 'always', None))

    def _flow_execute_score(self, traces, now):
        """ Points in the ledger without a rule nor an event; the scoring engine refreshes the scores. """
        if self.score_points:
            self.env['mautomate.score.entry'].sudo().create([{
                'partner_id': trace.participant_id.partner_id.id,
                'lead_id': trace.participant_id.lead_id.id,
                'points': self.score_points,
                'date': now,
            } for trace in traces])
            self.env['mautomate.scoring']._enqueue_refresh(traces.participant_id.partner_id.ids)
        return dict.fromkeys(traces.ids, ('done', 'always', None))

    def _flow_execute_condition(self, traces, now):
        if self.condition_type == 'domain':
            participants = self.flow_id._filter_participants(traces.participant_id, parse_domain(self.condition_domain))
            yes = traces.filtered(lambda trace: trace.participant_id in participants)
        elif self.condition_type == 'url':
            yes = traces.browse(self._traces_with_event(traces, 'page_view', self.condition_step_id, self.condition_url))
        else:
            yes = traces.browse(self._traces_with_event(traces, self.condition_event_type, self.condition_step_id))
        return {trace.id: ('done', 'yes' if trace in yes else 'no', None) for trace in traces}

    def _traces_with_event(self, traces, event_type, since_step, url_pattern=None):
        """ Ids of the traces whose contact has an event of `event_type` (of a URL matching `url_pattern`, with
        the semantics of scoring rules) since `since_step` ran for the participant (else since the participant's
        entry); an e-mail event since a step sending e-mail: an event of its mails. """
        self.env['mautomate.event'].flush_model()
        mailing = (since_step.mailing_id.id or -1) if since_step.kind == 'email' and event_type.startswith('email_') else None
        url_like, url_full = None, False
        if url_pattern:
            url_like = glob_to_like(url_pattern.strip())
            url_full = '://' in url_pattern
        path = SQL(PATH_QUERY)
        self.env.cr.execute(SQL("""
            SELECT t.id FROM mautomate_flow_trace t
              JOIN mautomate_flow_participant p ON p.id = t.participant_id
              LEFT JOIN mautomate_flow_trace since ON since.participant_id = p.id AND since.step_id = %(since_step)s
             WHERE t.id = ANY(%(ids)s) AND EXISTS (
                   SELECT 1 FROM mautomate_event e
                    WHERE e.partner_id = p.partner_id AND e.event_type = %(event_type)s
                      AND e.occurred_at >= COALESCE(since.done_at, p.create_date)
                      AND (%(mailing)s::int4 IS NULL OR (e.res_model = 'mailing.mailing' AND e.res_id = %(mailing)s))
                      AND (%(url_like)s::varchar IS NULL
                           OR (CASE WHEN %(url_full)s THEN e.url ELSE %(path)s END) ILIKE %(url_like)s
                           OR (NOT %(url_full)s AND split_part(%(path)s, '?', 1) ILIKE %(url_like)s)))
        """, since_step=since_step.id or None, ids=traces.ids, event_type=event_type, mailing=mailing,
            url_like=url_like, url_full=url_full, path=path))
        return [row[0] for row in self.env.cr.fetchall()]

    def _flow_execute_wait(self, traces, now):
        """ Wait for an event of the contact: yes when it comes (the ingest wakes the trace), timeout when it
        has not come in time. Until then the trace waits, due at its timeout. """
        self.env['mautomate.event'].flush_model()
        self.env.cr.execute(SQL("""
            SELECT t.id FROM mautomate_flow_trace t
              JOIN mautomate_flow_participant p ON p.id = t.participant_id
             WHERE t.id = ANY(%s) AND EXISTS (
                   SELECT 1 FROM mautomate_event e
                    WHERE (e.partner_id = p.partner_id OR e.lead_id = p.lead_id) AND e.event_type = %s
                      AND e.occurred_at >= COALESCE(t.started_at, %s))
        """, traces.ids, self.wait_event_type, now))
        came = {row[0] for row in self.env.cr.fetchall()}
        timeout = relativedelta(**{self.wait_timeout_unit: self.wait_timeout})
        results = {}
        for trace in traces:
            deadline = (trace.started_at or now) + timeout
            if trace.id in came:
                results[trace.id] = ('done', 'yes', None)
            elif now >= deadline:
                results[trace.id] = ('done', 'timeout', None)
            else:
                results[trace.id] = ('waiting', None, None, deadline)
        return results

    # ------------------------------------------------------------
    # Actions on the contact, its lead or another system
    # ------------------------------------------------------------

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
