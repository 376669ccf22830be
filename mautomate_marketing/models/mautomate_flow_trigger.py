from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .mautomate_event import EVENT_TYPES


class MautomateFlowTrigger(models.Model):
    """ What enrols a contact in a flow: an event of a type (with an optional name pattern), or a user. """
    _name = 'mautomate.flow.trigger'
    _description = 'Automation Flow Trigger'
    _order = 'flow_id, id'

    flow_id = fields.Many2one('mautomate.flow', required=True, ondelete='cascade', index=True)
    trigger_type = fields.Selection([('event', 'Event'), ('manual', 'Manual Enrolment')], 'Type', required=True,
                                    default='event')
    event_type = fields.Selection(EVENT_TYPES, help="An event of this type of a known contact enrols the contact.")
    name_pattern = fields.Char(
        'Event Name Pattern',
        help="Only events whose title matches: '*' is any text, e.g. 'Parcel delivered' or 'Video watched*'. "
             "Case-insensitive. Empty: any title.")

    @api.depends('trigger_type', 'event_type', 'name_pattern')
    def _compute_display_name(self):
        types = dict(self._fields['trigger_type']._description_selection(self.env))
        events = dict(self._fields['event_type']._description_selection(self.env))
        for trigger in self:
            if trigger.trigger_type == 'event':
                trigger.display_name = " · ".join(filter(None, [events.get(trigger.event_type), trigger.name_pattern]))
            else:
                trigger.display_name = types.get(trigger.trigger_type)

    @api.constrains('trigger_type', 'event_type', 'name_pattern')
    def _check_event(self):
        for trigger in self.filtered(lambda trigger: trigger.trigger_type == 'event'):
            if not trigger.event_type:
                raise ValidationError(self.env._("Flow %s: an event trigger needs an event type.", trigger.flow_id.name))
            if trigger.name_pattern is not False and not trigger.name_pattern.strip():
                raise ValidationError(self.env._("Flow %s: a name pattern cannot be blank; leave it empty to match any event.",
                                                 trigger.flow_id.name))

    @api.model_create_multi
    def create(self, vals_list):
        triggers = super().create(vals_list)
        self.env.registry.clear_cache()
        return triggers

    def write(self, vals):
        result = super().write(vals)
        self.env.registry.clear_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result
