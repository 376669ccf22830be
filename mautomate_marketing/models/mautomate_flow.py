import logging

from psycopg2 import OperationalError

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

from ..tools.domains import parse_domain
from ..tools.url_patterns import glob_to_like
from .mautomate_scoring import STAGE_RANK

_logger = logging.getLogger(__name__)


class MautomateFlow(models.Model):
    """ An automation flow: triggers enrol contacts, who then follow a graph of steps. """
    _name = 'mautomate.flow'
    _inherit = ['mail.thread']
    _description = 'Automation Flow'
    _order = 'id DESC'

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    state = fields.Selection([('draft', 'Draft'), ('running', 'Running'), ('paused', 'Paused'), ('stopped', 'Stopped')],
                             required=True, default='draft', readonly=True, copy=False, tracking=True)
    target = fields.Selection([('partner', 'Contacts'), ('lead', 'Leads')], required=True, default='partner',
                              tracking=True, help="Who follows the flow. Contacts: a lead's events enrol the lead's contact. Leads: each "
                                                  "lead follows the flow (its contact gets its mails); the audience and goal are "
                                                  "domains of leads.")
    target_model = fields.Char(compute='_compute_target_model', help="The model of the participants: what the domains filter.")
    user_id = fields.Many2one('res.users', 'Responsible', required=True, default=lambda self: self.env.user, check_company=True,
                              tracking=True, help="Gets the activities of contacts without a salesperson. The flow's audience, goal, "
                                                  "conditions and triggers find records with this user's access rights.")
    purpose = fields.Selection([('sell', 'Sell'), ('confirm', 'Confirm'), ('inform', 'Inform'), ('service', 'Service')],
                               default='inform')
    kpi_target = fields.Integer('Target Conversions', help="How many participants should reach the goal.")
    domain = fields.Char('Audience', default='[]', tracking=True, help="Only contacts matching this domain are enrolled.")
    goal_domain = fields.Char('Goal', tracking=True, help="A participant whose contact matches this domain leaves the flow as converted "
                                                          "before its next step.")
    reentry = fields.Selection([('once', 'Once'), ('after', 'Again after some days'), ('always', 'Every time')],
                               'Re-entry', required=True, default='once',
                               tracking=True, help="Once: a contact enters the flow at most once.\n"
                                                   "Again after some days: a contact may enter again that many days after its last entry, "
                                                   "once its last run has ended.\n"
                                                   "Every time: every trigger enrols the contact again.")
    reentry_days = fields.Integer('Re-entry After (days)', default=30, tracking=True)
    trigger_ids = fields.One2many('mautomate.flow.trigger', 'flow_id', 'Triggers', copy=True)
    step_ids = fields.One2many('mautomate.flow.step', 'flow_id', 'Steps')
    participant_ids = fields.One2many('mautomate.flow.participant', 'flow_id', 'Participations')
    participant_count = fields.Integer('Participants', compute='_compute_counts')
    running_count = fields.Integer('In Progress', compute='_compute_counts')
    converted_count = fields.Integer('Converted', compute='_compute_counts')
    conversion_rate = fields.Float('Conversion (%)', compute='_compute_counts', digits=(16, 1),
                                   help="Converted participants out of all participants.")
    trace_count = fields.Integer('Traces', compute='_compute_trace_count')
    _check_company_auto = True
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="Only this company's contacts or leads (and those of no company) follow the flow; "
                                      "only its events (and events of no company) trigger it. Empty: shared by all "
                                      "companies.")

    @api.depends('target')
    def _compute_target_model(self):
        for flow in self:
            flow.target_model = flow._target_model()

    @api.depends('participant_ids.state')
    def _compute_counts(self):
        counts = {(flow.id, state): count for flow, state, count in self.env['mautomate.flow.participant']._read_group(
            [('flow_id', 'in', self.ids)], ['flow_id', 'state'], ['__count'])}
        for flow in self:
            by_state = {state: counts.get((flow._origin.id, state), 0) for state in ('running', 'converted')}
            flow.participant_count = sum(count for (flow_id, _state), count in counts.items() if flow_id == flow._origin.id)
            flow.running_count = by_state['running']
            flow.converted_count = by_state['converted']
            flow.conversion_rate = 100.0 * flow.converted_count / flow.participant_count if flow.participant_count else 0.0

    def _compute_trace_count(self):
        counts = dict(self.env['mautomate.flow.trace']._read_group(
            [('flow_id', 'in', self._origin.ids)], ['flow_id'], ['__count']))
        for flow in self:
            flow.trace_count = counts.get(flow._origin, 0)

    @api.constrains('domain', 'goal_domain', 'target', 'user_id')
    def _check_domains(self):
        for flow in self:
            for label, text in ((self.env._("audience"), flow.domain), (self.env._("goal"), flow.goal_domain)):
                try:
                    flow._check_domain(flow._target_model(), text)
                except Exception as error:  # any parse, field or access error is the user's to fix
                    raise ValidationError(self.env._("Flow %(flow)s: the %(what)s domain is not valid (%(error)s).",
                                                     flow=flow.name, what=label, error=error)) from error
        # Another responsible: the triggers' and conditions' domains must work with its rights too.
        self.trigger_ids._check_settings()
        self.step_ids.filtered(lambda step: step.kind == 'condition')._check_kind_settings()

    @api.constrains('user_id', 'domain', 'goal_domain', 'target')
    def _check_domain_author(self):
        """ Domains run with the responsible's rights: who is not an administrator cannot give a flow more rights
        than their own, by choosing its responsible or by writing the domains of a flow run with another's. """
        if self.env.su or self.env.user.has_group('base.group_system'):
            return
        own_groups = self.env.user.sudo().groups_id
        for flow in self:
            responsible = flow.user_id.sudo()
            if responsible != self.env.user and (responsible._is_superuser() or not responsible.groups_id <= own_groups):
                raise ValidationError(self.env._(
                    "Flow %(flow)s finds records with the access rights of %(user)s, who has rights you do not have: "
                    "make yourself responsible for the flow to change its domains, or ask an administrator.",
                    flow=flow.name, user=flow.user_id.name))

    def _domain_env(self, model_name):
        """ `model_name` with the access rights of the flow's responsible, archived records included: the
        domains a flow's author wrote find only what the author may read. """
        self.ensure_one()
        # The companies allowed are the responsible's own, not those of whoever's request runs the flow.
        context = {key: value for key, value in self.env.context.items() if key != 'allowed_company_ids'}
        return self.env(user=self.user_id.id, su=False, context={**context, 'active_test': False})[model_name]

    def _domain_search(self, model_name, domain, **kwargs):
        """ The ids of `model_name` matching `domain` for the responsible; none if it may no longer read the model
        (its rights changed since the domain was saved): the engine goes on with the other flows. """
        try:
            return list(self._domain_env(model_name)._search(domain, **kwargs))
        except AccessError as error:
            _logger.warning("Flow %s: its responsible cannot search %s (%s); nothing matches", self.id, model_name, error)
            return []

    def _check_domain(self, model_name, text):
        """ Raise the error that searching `model_name` with domain `text` gives the responsible, if any. """
        with self.env.cr.savepoint():
            self._domain_env(model_name).search_count(parse_domain(text), limit=1)

    @api.constrains('target')
    def _check_target(self):
        self.env['mautomate.flow.participant'].flush_model(['flow_id', 'target'])
        for flow in self:
            if self.env['mautomate.flow.participant'].search_count(
                    [('flow_id', '=', flow.id), ('target', '!=', flow.target)], limit=1):
                raise ValidationError(self.env._("Flow %s has participants: it cannot change from contacts to leads or "
                                                 "back.", flow.name))

    def _target_model(self):
        """ The model of the flow's participants: contacts or leads. """
        return 'crm.lead' if self.target == 'lead' else 'res.partner'

    @api.constrains('reentry', 'reentry_days')
    def _check_reentry(self):
        for flow in self.filtered(lambda flow: flow.reentry == 'after' and flow.reentry_days <= 0):
            raise ValidationError(self.env._("Flow %s: re-entry after some days needs a number of days.", flow.name))

    # ------------------------------------------------------------
    # CRUD: the ingest hook's cache follows flows and triggers
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        flows = super().create(vals_list)
        self.env.registry.clear_cache()
        return flows

    def write(self, vals):
        result = super().write(vals)
        if {'state', 'active', 'trigger_ids'} & set(vals):
            self.env.registry.clear_cache()
        if {'target', 'user_id'} & set(vals):
            self.step_ids._sync_own_templates(check_author=False)
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_except_running(self):
        if self.filtered(lambda flow: flow.state in ('running', 'paused')):
            raise UserError(self.env._("Stop a flow before deleting it."))

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result

    # ------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------

    def action_start(self):
        for flow in self:
            if flow.state == 'running':
                continue
            flow._check_startable()
        self.filtered(lambda flow: flow.state != 'running').write({'state': 'running'})
        self.env['mautomate.flow.engine']._wake()
        self.trigger_ids._wake_scans()
        return True

    def action_pause(self):
        """ A paused flow keeps its participants; their steps wait until the flow runs again. """
        self.filtered(lambda flow: flow.state == 'running').write({'state': 'paused'})
        return True

    def action_stop(self):
        """ A stopped flow takes no one anymore, and its participants' pending steps are cancelled. """
        flows = self.filtered(lambda flow: flow.state in ('running', 'paused'))
        if flows:
            flows.write({'state': 'stopped'})
            self.env['mautomate.flow.participant'].search(
                [('flow_id', 'in', flows.ids), ('state', '=', 'running')])._finish('stopped', 'flow_stopped')
        return True

    def action_reset_to_draft(self):
        self.filtered(lambda flow: flow.state == 'stopped').write({'state': 'draft'})
        return True

    def _check_startable(self):
        self.ensure_one()
        if not self.step_ids:
            raise ValidationError(self.env._("Flow %s has no steps.", self.name))
        if not self.step_ids.filtered(lambda step: not step.parent_ids):
            raise ValidationError(self.env._("Flow %s has no first step (a step without parent).", self.name))
        for step in self.step_ids.filtered(lambda step: step.kind == 'condition'):
            branches = set(step.child_ids.mapped('branch'))
            if not {'yes', 'no'} <= branches:
                raise ValidationError(self.env._(
                    "Step %(step)s of flow %(flow)s: a condition needs a step on its \"yes\" branch and one on its \"no\" branch.",
                    step=step.name, flow=self.name))
        for step in self.step_ids.filtered(lambda step: step.kind == 'wait'):
            step._flow_check_timeout_branch()
        for step in self.step_ids.filtered(lambda step: step.kind == 'split'):
            labels = dict(step._fields['branch']._description_selection(self.env))
            variants = {branch for branch, _weight in step._split_weights()}
            branches = set(step.child_ids.mapped('branch'))
            if missing := sorted(variants - branches):
                raise ValidationError(self.env._(
                    "Step %(step)s of flow %(flow)s: a random split needs a step on each of its variants (missing: %(variants)s).",
                    step=step.name, flow=self.name, variants=", ".join(labels[branch] for branch in missing)))
            if unweighted := sorted(branches - variants - {'always'}):
                raise ValidationError(self.env._(
                    "Step %(step)s of flow %(flow)s: steps follow %(variants)s, which the split never draws (no weight).",
                    step=step.name, flow=self.name, variants=", ".join(labels[branch] for branch in unweighted)))
        self.step_ids._check_kind_settings()

    def action_enroll(self, record_ids):
        """ Enrol these contacts (manual enrolment; in a flow of leads, these leads), following the audience
        and re-entry policy. Returns the new participants. """
        self.ensure_one()
        self.check_access('write')
        if self.state != 'running':
            raise UserError(self.env._("Start flow %s before enrolling contacts.", self.name))
        return self._enroll_targets(record_ids)

    def action_enroll_domain(self, domain, batch_size=10000):
        """ Enrol every contact (or lead) matching `domain` and the audience, in batches of ids: set-based for
        100k contacts. Returns how many were enrolled. """
        self.ensure_one()
        self.check_access('write')
        if self.state != 'running':
            raise UserError(self.env._("Start flow %s before enrolling contacts.", self.name))
        # The caller's domain finds what the caller reads; the audience what the responsible reads (on enrolment).
        Target = self.env[self._target_model()].with_context(active_test=False)
        count, last_id = 0, 0
        while True:
            ids = list(Target._search([('id', '>', last_id), *domain], order='id', limit=batch_size))
            if not ids:
                return count
            count += len(self._enroll_targets(ids))
            last_id = ids[-1]

    @api.readonly
    def action_open_participants(self):
        self.ensure_one()
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_flow_participant_action')
        action.update({'domain': [('flow_id', '=', self.id)], 'context': {'default_flow_id': self.id}})
        return action

    @api.readonly
    def action_open_converted(self):
        action = self.action_open_participants()
        action['context'] = {**action['context'], 'search_default_converted': 1}
        return action

    @api.readonly
    def action_open_traces(self):
        self.ensure_one()
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_flow_trace_action')
        action.update({'domain': [('flow_id', '=', self.id)], 'context': {'search_default_group_step': 1}})
        return action

    # ------------------------------------------------------------
    # Enrolment
    # ------------------------------------------------------------

    def _enroll_targets(self, ids):
        """ Enrol these contacts, or in a flow of leads these leads. """
        self.ensure_one()
        return self._enroll_leads(ids) if self.target == 'lead' else self._enroll(dict.fromkeys(ids))

    def _enroll(self, lead_by_partner):
        """ Enrol contacts {partner id: lead id or None} in this running flow of contacts, set-based: the
        audience domain, then the re-entry policy in SQL; the first steps are scheduled and the engine woken. """
        self.ensure_one()
        if self.state != 'running' or not lead_by_partner or self.target != 'partner':
            return self.env['mautomate.flow.participant']
        # A contact whose tracking was erased enters no flow until it opts in again.
        partner_ids = self._domain_search('res.partner', [('id', 'in', list(lead_by_partner)), *self._company_domain(),
                                                          *parse_domain(self.domain)])
        partner_ids = list(self.env['res.partner'].sudo().with_context(active_test=False)._search(
            [('id', 'in', partner_ids), ('mautomate_erased_on', '=', False)]))
        return self._insert_participants(partner_ids, [lead_by_partner.get(partner_id) or None for partner_id in partner_ids])

    def _enroll_leads(self, lead_ids):
        """ Enrol leads in this running flow of leads (their contact, if any, with them), like _enroll. """
        self.ensure_one()
        if self.state != 'running' or not lead_ids or self.target != 'lead':
            return self.env['mautomate.flow.participant']
        # The audience is the responsible's search; reading the leads' contacts is the engine's own business.
        leads = self.env['crm.lead'].sudo().with_context(active_test=False).search([
            ('id', 'in', self._domain_search('crm.lead', [('id', 'in', list(lead_ids)), *self._company_domain(),
                                                          *parse_domain(self.domain)])),
            '|', ('partner_id', '=', False), ('partner_id.mautomate_erased_on', '=', False)])
        return self._insert_participants([lead.partner_id.id or None for lead in leads], leads.ids)

    def _company_domain(self):
        """ Whom a company's flow takes: the company's contacts (leads) and those of no company, shared as crm shares them. """
        return [('company_id', 'in', [False, self.company_id.id])] if self.company_id else []

    def _insert_participants(self, partner_ids, lead_ids):
        """ Insert the participants (parallel lists) that the re-entry policy lets in: a flow of contacts
        keys them by contact, a flow of leads by lead. """
        Participant = self.env['mautomate.flow.participant']
        if not partner_ids:
            return Participant
        key = SQL.identifier('lead_id' if self.target == 'lead' else 'partner_id')
        # Which earlier entries keep a contact (lead) out, by the re-entry policy.
        blocking = {
            'once': SQL("TRUE"),
            'after': SQL("(x.state = 'running' OR x.create_date > (now() at time zone 'UTC') - make_interval(days => %s))",
                         self.reentry_days),
            'always': SQL("FALSE"),
        }[self.reentry]
        for model in ('mautomate.flow.participant', 'mautomate.flow.step', 'mautomate.flow.trace'):
            self.env[model].flush_model()
        # The entries that block are read once, before the insert: a NOT EXISTS per inserted row would scan the
        # rows this statement inserts too, quadratic in the number of contacts.
        self.env.cr.execute(SQL("""
            WITH blocked AS MATERIALIZED (
                SELECT x.%(key)s AS key FROM mautomate_flow_participant x
                 WHERE x.flow_id = %(flow)s AND x.%(key)s = ANY(%(keys)s::int4[]) AND %(blocking)s
            )
            INSERT INTO mautomate_flow_participant (flow_id, partner_id, lead_id, target, state, exclusive,
                                                    create_uid, write_uid, create_date, write_date)
            SELECT %(flow)s, v.partner_id, v.lead_id, %(target)s, 'running', %(exclusive)s,
                   %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM unnest(%(partners)s::int4[], %(leads)s::int4[]) AS v(partner_id, lead_id)
             WHERE NOT EXISTS (SELECT 1 FROM blocked b WHERE b.key = v.%(key)s)
                ON CONFLICT (flow_id, %(key)s) WHERE state = 'running' AND exclusive AND target = %(target)s DO NOTHING
         RETURNING id
        """, flow=self.id, uid=self.env.uid, partners=partner_ids, exclusive=self.reentry != 'always',
            leads=list(lead_ids), blocking=blocking, key=key, target=self.target,
            keys=[key_id for key_id in (lead_ids if self.target == 'lead' else partner_ids) if key_id]))
        participants = Participant.browse([row[0] for row in self.env.cr.fetchall()])
        if participants:
            self.env['mautomate.flow.engine']._schedule_first_steps(self, participants.ids)
            self.invalidate_recordset(['participant_ids'])
            self.env['mautomate.flow.trace'].invalidate_model()
        return participants

    @api.model
    @tools.ormcache()
    def _get_trigger_event_types(self):
        """ Event types that enrol contacts in running flows. Cached: asked on every ingest. """
        self.flush_model(['state', 'active'])
        self.env['mautomate.flow.trigger'].flush_model()
        self.env.cr.execute("""
            SELECT DISTINCT CASE WHEN t.trigger_type = 'stage' THEN 'stage_change' ELSE t.event_type END
              FROM mautomate_flow_trigger t JOIN mautomate_flow f ON f.id = t.flow_id
             WHERE f.state = 'running' AND f.active AND t.trigger_type IN ('event', 'stage')
        """)
        return frozenset(row[0] for row in self.env.cr.fetchall())

    @api.model
    @tools.ormcache()
    def _get_wait_event_types(self):
        """ Event types that steps of running flows wait for. Cached: asked on every ingest. """
        self.flush_model(['state', 'active'])
        self.env['mautomate.flow.step'].flush_model(['kind', 'wait_event_type', 'flow_id'])
        self.env.cr.execute("""
            SELECT DISTINCT s.wait_event_type FROM mautomate_flow_step s JOIN mautomate_flow f ON f.id = s.flow_id
             WHERE f.state = 'running' AND f.active AND s.kind = 'wait'
        """)
        return frozenset(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _event_reactions(self, event_types=None):
        """ (enrol, wake): whether running flows start on, and whether their steps wait for, events of
        these types (None: any type). """
        trigger_types = self._get_trigger_event_types()
        wait_types = self._get_wait_event_types()
        types = None if event_types is None else set(event_types)
        enroll = bool(trigger_types) and (types is None or bool(trigger_types & types))
        wake = bool(wait_types) and (types is None or bool(wait_types & types))
        return enroll, wake

    @api.model
    def _enroll_from_events(self, event_ids, event_types=None):
        """ Called on every ingest: enrol the events' contacts in the running flows they trigger, and wake the
        steps waiting for them. An error is logged, never raised: the events stay. """
        if not event_ids:
            return
        enroll, wake = self._event_reactions(event_types)
        if not enroll and not wake:
            return
        trigger_types = self._get_trigger_event_types()
        try:
            with self.env.cr.savepoint(flush=False):
                if enroll:
                    self._enroll_events(event_ids, trigger_types)
                if wake:
                    self._wake_waiting(event_ids)
        except OperationalError as error:
            if isinstance(error, PG_CONCURRENCY_EXCEPTIONS_TO_RETRY):
                raise
            _logger.exception("Could not enrol the contacts of events %s in flows", event_ids[:10])
        except Exception:
            _logger.exception("Could not enrol the contacts of events %s in flows", event_ids[:10])

    @api.model
    def _wake_waiting(self, event_ids):
        """ Steps waiting for these events' contacts become due now (a trace the engine holds is skipped:
        the ingest never waits for the engine). """
        now = fields.Datetime.now()
        self.env['mautomate.flow.trace'].flush_model()
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_trace SET scheduled_at = %(now)s WHERE id IN (
                SELECT t.id FROM mautomate_flow_trace t
                  JOIN mautomate_flow_participant p ON p.id = t.participant_id
                  JOIN mautomate_flow_step s ON s.id = t.step_id
                  JOIN mautomate_flow f ON f.id = p.flow_id
                  JOIN mautomate_event e ON (e.partner_id = p.partner_id OR e.lead_id = p.lead_id) AND e.event_type = s.wait_event_type
                 WHERE e.id = ANY(%(events)s) AND t.state = 'waiting' AND t.scheduled_at > %(now)s
                   AND (e.company_id IS NULL OR f.company_id IS NULL OR e.company_id = f.company_id)
                   FOR UPDATE OF t SKIP LOCKED)
        """, now=now, events=list(event_ids)))
        if self.env.cr.rowcount:
            self.env['mautomate.flow.trace'].invalidate_model(['scheduled_at'])
            self.env['mautomate.flow.engine']._wake()

    @api.model
    def _enroll_events(self, event_ids, trigger_types):
        """ Enrol the contacts (flows of leads: the leads) of these events in the flows whose event or stage
        triggers they match. A stage trigger matches a stage change of the flow's participants' model that
        reaches or passes its stage. """
        Trigger = self.env['mautomate.flow.trigger'].sudo()
        triggers = Trigger.search([('flow_id.state', '=', 'running'), '|',
                                   '&', ('trigger_type', '=', 'event'), ('event_type', 'in', list(trigger_types)),
                                   ('trigger_type', '=', 'stage')])
        if not triggers:
            return
        values = SQL(', ').join(
            SQL("(%s::int4, %s::varchar, %s::varchar, %s::varchar, %s::int4, %s::bool, %s::int4)", trigger.flow_id.id,
                'stage_change' if trigger.trigger_type == 'stage' else trigger.event_type,
                (trigger.name_pattern and glob_to_like(trigger.name_pattern.strip())) or None,
                trigger.target_model if trigger.trigger_type == 'stage' else None, STAGE_RANK.get(trigger.stage),
                trigger.flow_id.target == 'lead', trigger.flow_id.company_id.id or None)
            for trigger in triggers)
        stages = list(STAGE_RANK)
        self.env.cr.execute(SQL("""
            SELECT DISTINCT ON (t.flow_id, e.partner_id, CASE WHEN t.by_lead THEN e.lead_id END)
                   t.flow_id, e.partner_id, e.lead_id
              FROM mautomate_event e
              JOIN (VALUES %(values)s) AS t(flow_id, event_type, name_like, stage_model, stage_rank, by_lead, company_id)
                ON t.event_type = e.event_type AND (t.name_like IS NULL OR e.name ILIKE t.name_like)
               AND (t.company_id IS NULL OR e.company_id IS NULL OR e.company_id = t.company_id)
               AND (t.stage_rank IS NULL OR (e.res_model = t.stage_model
                    AND COALESCE(%(from)s, 0) < t.stage_rank AND COALESCE(%(to)s, 0) >= t.stage_rank))
             WHERE e.id = ANY(%(events)s) AND (CASE WHEN t.by_lead THEN e.lead_id ELSE e.partner_id END) IS NOT NULL
          ORDER BY t.flow_id, e.partner_id, CASE WHEN t.by_lead THEN e.lead_id END, e.id
        """, values=values, events=list(event_ids),
            **{'from': SQL("array_position(%s::varchar[], e.payload->>'from')", stages),
               'to': SQL("array_position(%s::varchar[], e.payload->>'to')", stages)}))
        by_flow = {}
        for flow_id, partner_id, lead_id in self.env.cr.fetchall():
            by_flow.setdefault(flow_id, []).append((partner_id, lead_id))
        for flow in self.sudo().browse(sorted(by_flow)):
            if flow.target == 'lead':
                flow._enroll_leads([lead_id for _partner_id, lead_id in by_flow[flow.id]])
            else:
                flow._enroll(dict(by_flow[flow.id]))

    def _filter_participants(self, participants, domain):
        """ The participants of this flow whose contact (flows of leads: lead) matches `domain`. """
        self.ensure_one()
        column = 'lead_id' if self.target == 'lead' else 'partner_id'
        matching = set(self._domain_search(self._target_model(), [('id', 'in', participants[column].ids), *domain]))
        return participants.filtered(lambda participant: participant[column].id in matching)
