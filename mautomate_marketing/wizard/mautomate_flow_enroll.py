from odoo import api, fields, models


class MautomateFlowEnroll(models.TransientModel):
    """ Enrol selected contacts in a running flow, from the contact list. """
    _name = 'mautomate.flow.enroll'
    _description = 'Enrol Contacts in a Flow'

    flow_id = fields.Many2one('mautomate.flow', required=True, domain=[('state', '=', 'running')])
    partner_ids = fields.Many2many('res.partner', string='Contacts', required=True)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if 'partner_ids' in fields_list and self.env.context.get('active_model') == 'res.partner':
            values['partner_ids'] = [(6, 0, self.env.context.get('active_ids') or [])]
        return values

    def action_enroll(self):
        self.ensure_one()
        participants = self.flow_id.action_enroll(self.partner_ids.ids)
        skipped = len(self.partner_ids) - len(participants.partner_id)
        message = self.env._("%(count)s contacts enrolled in %(flow)s.", count=len(participants.partner_id),
                             flow=self.flow_id.name)
        if skipped:
            message += " " + self.env._(
                "%s were not: outside the flow's audience, or already in it under its re-entry policy.", skipped)
        return {'type': 'ir.actions.client', 'tag': 'display_notification', 'params': {
            'type': 'success' if participants else 'warning', 'message': message,
            'next': {'type': 'ir.actions.act_window_close'}}}
