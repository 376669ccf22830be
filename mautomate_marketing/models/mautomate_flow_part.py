from odoo import api, models


class MautomateFlowPart(models.AbstractModel):
    """ A part of a flow (a step, a trigger): who adds, changes or deletes one is logged in its flow's chatter, the
    changed fields (those with `tracking`) with their old and new values, as Odoo logs a journal item's changes on its
    entry. Parts have a `flow_id`, and name their kind in `_flow_part_kind_field` and their noun in `_flow_part_noun`. """
    _name = 'mautomate.flow.part'
    _description = 'Automation Flow Part'
    _flow_part_kind_field = 'kind'

    def _valid_field_parameter(self, field, name):
        # Parts are no mail.thread, yet their fields name what their flow's chatter tracks.
        return name == 'tracking' or super()._valid_field_parameter(field, name)

    @api.model_create_multi
    def create(self, vals_list):
        parts = super().create(vals_list)
        for part in parts:
            part._log_on_flow(self.env._("%(part)s %(name)s added: %(kind)s", part=part._flow_part_noun(),
                                         name=part._get_html_link(), kind=part._flow_part_kind()))
        return parts

    def write(self, vals):
        tracked_fields = self._tracked_fields(vals)
        initial_values = {part.id: {name: part[name] for name in tracked_fields} for part in self} if tracked_fields else {}
        result = super().write(vals)
        for part in self.filtered(lambda part: part.id in initial_values):
            if tracking_value_ids := part._mail_track(tracked_fields, initial_values[part.id])[1]:
                part._log_on_flow(self.env._("%(part)s %(name)s changed", part=part._flow_part_noun(),
                                             name=part._get_html_link()), tracking_value_ids)
        return result

    def unlink(self):
        for part in self:
            part._log_on_flow(self.env._("%(part)s %(name)s deleted: %(kind)s", part=part._flow_part_noun(),
                                         name=part.display_name, kind=part._flow_part_kind()))
        return super().unlink()

    def _tracked_fields(self, vals):
        """ The tracked fields among those `vals` writes that the user may read (fields_get leaves out the others). """
        if self.env.context.get('tracking_disable'):
            return {}
        names = [name for name in vals if getattr(self._fields.get(name), 'tracking', False)]
        return self.fields_get(names, attributes=('string', 'type', 'selection', 'currency_field')) if names else {}

    def _flow_part_kind(self):
        field = self._fields[self._flow_part_kind_field]
        return dict(field._description_selection(self.env)).get(self[field.name], '')

    def _log_on_flow(self, body, tracking_value_ids=False):
        """ A note in the flow's chatter, by the current user. """
        if not self.env.context.get('tracking_disable'):
            self.flow_id._message_log(body=body, tracking_value_ids=tracking_value_ids)
