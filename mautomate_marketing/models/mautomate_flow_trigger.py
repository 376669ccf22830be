from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from .mautomate_event import EVENT_TYPES
from .mautomate_scoring import GRADES, STAGES

TRIGGER_TYPES = [
    ('event', 'Event'),
    ('manual', 'Manual Enrolment'),
    ('stage', 'Lifecycle Stage Reached'),
    ('score', 'Score Reached'),
    ('grade', 'Grade Reached'),
    ('field', 'Field Changed'),
    ('date', 'Date Reached'),
    ('inactivity', 'Inactivity'),
    ('record', 'Record of Another Model'),
]
NUMERIC_TYPES = ('integer', 'float', 'monetary')
WATCHABLE_TYPES = ('boolean', 'char', 'date', 'datetime', 'float', 'integer', 'many2one', 'monetary', 'selection', 'text')


class MautomateFlowTrigger(models.Model):
    """ What enrols a contact (or a lead, in a flow of leads) in a flow: an event, a stage, score or grade
    reached, a field changed, a date reached, inactivity, a record of another model, or a user. """
    _name = 'mautomate.flow.trigger'
    _inherit = ['mautomate.flow.part']
    _description = 'Automation Flow Trigger'
    _flow_part_kind_field = 'trigger_type'
    _order = 'flow_id, id'

    flow_id = fields.Many2one('mautomate.flow', required=True, ondelete='cascade', index=True)
    trigger_type = fields.Selection(TRIGGER_TYPES, 'Type', required=True, default='event', tracking=True)
    target_model = fields.Char(compute='_compute_target_model', help="The model of the flow's participants.")
    event_type = fields.Selection(EVENT_TYPES, tracking=True, help="An event of this type of a known contact enrols the contact. "
                                                                   "Inactivity: the type of event that has not come.")
    name_pattern = fields.Char(
        'Event Name Pattern',
        tracking=True, help="Only events whose title matches: '*' is any text, e.g. 'Parcel delivered' or 'Video watched*'. "
                            "Case-insensitive. Empty: any title.")
    # stage, score, grade
    stage = fields.Selection(STAGES, tracking=True, help="Enrols when the lifecycle stage reaches this stage or passes it.")
    score_threshold = fields.Float('Score At Least', tracking=True, help="Enrols when the engagement score rises to this value or above.")
    grade = fields.Selection(GRADES, tracking=True)
    grade_or_better = fields.Boolean('Or Better', tracking=True, help="A grade whose letter and digit are both at least as good "
                                                                      "(e.g. B2 or better: A1, A2, B1, B2).")
    # field changed
    field_id = fields.Many2one('ir.model.fields', ondelete='cascade', tracking=True,
                               domain=f"[('model', '=', target_model), ('store', '=', True), ('ttype', 'in', {WATCHABLE_TYPES!r})]")
    field_change = fields.Selection([('any', 'Changes'), ('increase', 'Increases By At Least')], 'Change',
                                    default='any', tracking=True)
    field_amount = fields.Float(tracking=True, help="How much the number must grow in one change.")
    # date reached
    date_field_id = fields.Many2one('ir.model.fields', ondelete='cascade',
                                    domain="[('model', '=', target_model), ('store', '=', True), "
                                           "('ttype', 'in', ('date', 'datetime'))]", tracking=True)
    date_offset = fields.Integer('Days', tracking=True, help="How many days before or after the date.")
    date_direction = fields.Selection([('before', 'Before'), ('after', 'After')], 'Before/After', default='before', tracking=True)
    date_yearly = fields.Boolean('Every Year', tracking=True,
                                 help="Every year on the day and month of the date (birthdays, anniversaries).")
    # inactivity
    inactivity_days = fields.Integer('Days Without', default=30,
                                     tracking=True, help="Enrols who had an event of the type, then none for this many days.")
    # a record of another model
    res_model_id = fields.Many2one('ir.model', 'Model', ondelete='cascade',
                                   domain=[('transient', '=', False), ('model', 'not like', 'mautomate.%')], tracking=True)
    res_model = fields.Char('Model Name', related='res_model_id.model')
    partner_field = fields.Char('Contact Field', default='partner_id',
                                tracking=True, help="The field (or path, e.g. order_id.partner_id) of the record that gives its contact; "
                                                    "in a flow of leads, its lead.")
    # field changed (the contact or lead after the change) and record (the other model's record)
    filter_domain = fields.Char('Only When', default='[]',
                                tracking=True, help="Field changed: the contact or lead must match this after the change. "
                                                    "Record: the records that enrol their contact when they start matching.")
    domain_model = fields.Char(compute='_compute_target_model')
    last_check = fields.Datetime(readonly=True, copy=False,
                                 help="Until when the cron has looked at dates, inactivity or records.")

    @api.depends('flow_id.target', 'trigger_type', 'res_model')
    def _compute_target_model(self):
        for trigger in self:
            trigger.target_model = trigger.flow_id._target_model()
            trigger.domain_model = trigger.res_model if trigger.trigger_type == 'record' else trigger.target_model

    @api.depends('trigger_type', 'event_type', 'name_pattern', 'stage', 'score_threshold', 'grade', 'grade_or_better',
                 'field_id', 'field_change', 'field_amount', 'date_field_id', 'date_offset', 'date_direction',
                 'date_yearly', 'inactivity_days', 'res_model_id')
    def _compute_display_name(self):
        types = dict(self._fields['trigger_type']._description_selection(self.env))
        events = dict(self._fields['event_type']._description_selection(self.env))
        stages = dict(self._fields['stage']._description_selection(self.env))
        for trigger in self:
            kind = trigger.trigger_type
            if kind == 'event':
                trigger.display_name = " · ".join(filter(None, [events.get(trigger.event_type), trigger.name_pattern]))
                continue
            detail = {
                'stage': stages.get(trigger.stage),
                'score': f"≥ {trigger.score_threshold:g}",
                'grade': (trigger.grade or '') + (self.env._(" or better") if trigger.grade_or_better else ''),
                'field': trigger.field_id.field_description and (
                    f"{trigger.field_id.field_description} +{trigger.field_amount:g}" if trigger.field_change == 'increase'
                    else trigger.field_id.field_description),
                'date': trigger.date_field_id.field_description,
                'inactivity': self.env._("%(event)s, %(days)s days", event=events.get(trigger.event_type),
                                         days=trigger.inactivity_days),
                'record': trigger.res_model_id.name,
            }.get(kind)
            trigger.display_name = " · ".join(filter(None, [types.get(kind), detail]))

    @api.constrains('trigger_type', 'event_type', 'name_pattern')
    def _check_event(self):
        for trigger in self.filtered(lambda trigger: trigger.trigger_type in ('event', 'inactivity')):
            if not trigger.event_type:
                raise ValidationError(self.env._("Flow %s: an event trigger needs an event type.", trigger.flow_id.name))
            if trigger.name_pattern is not False and not trigger.name_pattern.strip():
                raise ValidationError(self.env._("Flow %s: a name pattern cannot be blank; leave it empty to match any event.",
                                                 trigger.flow_id.name))

    @api.constrains('trigger_type', 'stage', 'grade', 'field_id', 'field_change', 'field_amount', 'date_field_id',
                    'date_offset', 'inactivity_days', 'res_model_id', 'partner_field', 'filter_domain', 'flow_id')
    def _check_settings(self):
        for trigger in self:
            name, kind = trigger.flow_id.name, trigger.trigger_type
            if kind == 'stage' and not trigger.stage:
                raise ValidationError(self.env._("Flow %s: a stage trigger needs a stage.", name))
            if kind == 'grade' and not trigger.grade:
                raise ValidationError(self.env._("Flow %s: a grade trigger needs a grade.", name))
            if kind == 'field':
                field = trigger.field_id
                if not field or field.model != trigger.target_model or not field.store or field.ttype not in WATCHABLE_TYPES:
                    raise ValidationError(self.env._("Flow %(flow)s: choose a stored field of the %(model)s.", flow=name,
                                                     model=self.env['ir.model']._get(trigger.target_model).name))
                if trigger.field_change == 'increase' and (field.ttype not in NUMERIC_TYPES or trigger.field_amount < 0):
                    raise ValidationError(self.env._("Flow %s: an increase is of a number field, by a positive amount.", name))
            if kind == 'date':
                field = trigger.date_field_id
                if not field or field.model != trigger.target_model or not field.store or field.ttype not in ('date', 'datetime'):
                    raise ValidationError(self.env._("Flow %s: choose a stored date field of the flow's contacts or leads.",
                                                     name))
                if trigger.date_offset < 0:
                    raise ValidationError(self.env._("Flow %s: the days before or after a date cannot be negative.", name))
            if kind == 'inactivity' and trigger.inactivity_days <= 0:
                raise ValidationError(self.env._("Flow %s: inactivity lasts at least one day.", name))
            if kind == 'record':
                trigger._check_record_settings()
            if kind in ('field', 'record'):
                trigger._check_filter_domain()

    def _check_record_settings(self):
        if not self.res_model_id or self.res_model not in self.env:
            raise ValidationError(self.env._("Flow %s: choose the model of the records.", self.flow_id.name))
        user = self.flow_id.user_id
        if self._is_admin_model(self.res_model) and not (user._is_superuser() or user._is_system()):
            raise ValidationError(self.env._(
                "Flow %(flow)s: only an administrator can be responsible for a flow watching %(model)s, a technical model.",
                flow=self.flow_id.name, model=self.res_model_id.name))
        if not self.flow_id._domain_env(self.res_model).has_access('read'):
            raise ValidationError(self.env._(
                "Flow %(flow)s: its responsible %(user)s may not read %(model)s: a trigger only watches records its "
                "responsible may read.", flow=self.flow_id.name, user=user.name, model=self.res_model_id.name))
        try:
            target = self._follow_partner_field()
        except KeyError:
            target = None
        if target != self.target_model:
            raise ValidationError(self.env._(
                "Flow %(flow)s: the contact field of %(model)s must lead to a %(target)s.", flow=self.flow_id.name,
                model=self.res_model_id.name, target=self.env['ir.model']._get(self.target_model).name))

    @api.model
    def _is_admin_model(self, model_name):
        """ Whether a model belongs to Settings' technical group: ir.* models, API keys, and models whose read
        access is only given to administrators (system parameters and the like). """
        if model_name.startswith(('ir.', 'res.users.apikeys')):
            return True
        system = self.env.ref('base.group_system')
        accesses = self.env['ir.model.access'].sudo().search([('model_id.model', '=', model_name), ('perm_read', '=', True)])
        return all(access.group_id and (access.group_id == system or system in access.group_id.trans_implied_ids)
                   for access in accesses)

    def _follow_partner_field(self):
        """ The model the record's contact field leads to (KeyError: a field that does not exist). """
        model = self.env[self.res_model]
        for name in (self.partner_field or '').split('.'):
            field = model._fields[name]
            if field.type != 'many2one':
                return None
            model = self.env[field.comodel_name]
        return model._name

    def _check_filter_domain(self):
        try:
            self.flow_id._check_domain(self.domain_model, self.filter_domain)
        except Exception as error:  # any parse, field or access error is the user's to fix
            raise ValidationError(self.env._("Flow %(flow)s: the trigger's domain is not valid (%(error)s).",
                                             flow=self.flow_id.name, error=error)) from error

    @api.constrains('trigger_type', 'res_model_id', 'filter_domain', 'flow_id')
    def _check_domain_author(self):
        self.filtered(lambda trigger: trigger.trigger_type in ('field', 'record')).flow_id._check_domain_author()

    # ------------------------------------------------------------
    # CRUD: the ingest and write hooks' caches follow triggers
    # ------------------------------------------------------------

    def _flow_part_noun(self):
        return self.env._("Trigger")

    @api.model_create_multi
    def create(self, vals_list):
        triggers = super().create(vals_list)
        self.env.registry.clear_cache()
        triggers._wake_scans()
        return triggers

    def write(self, vals):
        result = super().write(vals)
        # The crons' own bookkeeping changes no cached set: no cache invalidation for all workers every few minutes.
        if set(vals) - {'last_check'}:
            self.env.registry.clear_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result

    def _wake_scans(self):
        """ The crons of these triggers of running flows run at once: today's dates, a baseline of records. """
        types = set(self.filtered(lambda trigger: trigger.flow_id.state == 'running').mapped('trigger_type'))
        if 'record' in types:
            self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_trigger_records').sudo()._trigger()
        if types & {'date', 'inactivity'}:
            self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_trigger_daily').sudo()._trigger()

    @api.model
    @tools.ormcache()
    def _get_watched_fields(self):
        """ {model: frozenset(field names)} that triggers of running flows watch on write (field changed), and
        on the scoring's updates (score and grade). Cached: asked on every write of a contact or lead. """
        watched = {'res.partner': set(), 'crm.lead': set()}
        for trigger in self.sudo().search([('flow_id.state', '=', 'running'),
                                           ('trigger_type', 'in', ('field', 'score', 'grade'))]):
            names = {'field': [trigger.field_id.name], 'score': ['mautomate_score'], 'grade': ['mautomate_grade']}
            watched[trigger.target_model].update(names[trigger.trigger_type])
        return {model: frozenset(names) for model, names in watched.items()}

    def _fires_on_change(self, old, new):
        """ Whether a change of a contact or lead from values `old` to `new` ({column: value}) fires this trigger. """
        self.ensure_one()
        if self.trigger_type == 'score':
            return (old['mautomate_score'] or 0) < self.score_threshold <= (new['mautomate_score'] or 0)
        if self.trigger_type == 'grade':
            return self._grade_matches(new['mautomate_grade']) and not self._grade_matches(old['mautomate_grade'])
        name = self.field_id.name
        if self.field_change == 'increase':
            gain = (new[name] or 0) - (old[name] or 0)
            return gain > 0 and gain >= self.field_amount
        return old[name] != new[name]

    def _grade_matches(self, grade):
        if not grade:
            return False
        if not self.grade_or_better:
            return grade == self.grade
        # A is the best fit and 1 the best engagement: "B2 or better" is a letter up to B and a digit up to 2.
        return grade[0] <= self.grade[0] and grade[1] <= self.grade[1]
