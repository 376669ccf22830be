from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools.domains import parse_domain


class MautomateFlowEnroll(models.TransientModel):
    """ Enrol contacts in a running flow: those selected in the contact list, or all those matching a domain
    (in a flow of leads, leads). """
    _name = 'mautomate.flow.enroll'
    _description = 'Enrol Contacts in a Flow'

    flow_id = fields.Many2one('mautomate.flow', required=True, domain=[('state', '=', 'running')])
    mode = fields.Selection([('selected', 'Selected Contacts'), ('domain', 'All Matching')], required=True,
                            default='selected')
    partner_ids = fields.Many2many('res.partner', string='Contacts')
    target_model = fields.Char(compute='_compute_target_model')
    domain = fields.Char('Matching', default='[]',
                         help="Every contact (or lead, in a flow of leads) matching this and the flow's audience enrols.")
    match_count = fields.Integer('Matching Records', compute='_compute_match_count')

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if 'partner_ids' in fields_list and self.env.context.get('active_model') == 'res.partner':
            values['partner_ids'] = [(6, 0, self.env.context.get('active_ids') or [])]
        if 'flow_id' in fields_list and self.env.context.get('active_model') == 'mautomate.flow':
            values.update(flow_id=self.env.context.get('active_id'), mode='domain')
        return values

    @api.depends('flow_id.target')
    def _compute_target_model(self):
        for wizard in self:
            wizard.target_model = wizard.flow_id._target_model()

    @api.depends('mode', 'domain', 'flow_id')
    def _compute_match_count(self):
        for wizard in self:
            wizard.match_count = 0
            if wizard.mode == 'domain' and wizard.flow_id:
                try:
                    domain = [*parse_domain(wizard.domain), *parse_domain(wizard.flow_id.domain)]
                    wizard.match_count = self.env[wizard.flow_id._target_model()].search_count(domain)
                except (ValueError, SyntaxError):
                    continue

    @api.constrains('domain', 'flow_id')
    def _check_domain(self):
        for wizard in self.filtered(lambda wizard: wizard.mode == 'domain'):
            try:
                with self.env.cr.savepoint():
                    self.env[wizard.flow_id._target_model()].search_count(parse_domain(wizard.domain), limit=1)
            except Exception as error:  # any parse or field error is the user's to fix
                raise ValidationError(self.env._("The domain is not valid (%s).", error)) from error

    def action_enroll(self):
        self.ensure_one()
        if self.mode == 'domain':
            count = self.flow_id.action_enroll_domain(parse_domain(self.domain))
            return self._notify(count, None)
        if self.flow_id.target != 'partner':
            raise UserError(self.env._("Flow %s takes leads: enrol them by a domain.", self.flow_id.name))
        participants = self.flow_id.action_enroll(self.partner_ids.ids)
        return self._notify(len(participants.partner_id), len(self.partner_ids) - len(participants.partner_id))

    def _notify(self, count, skipped):
        message = self.env._("%(count)s contacts enrolled in %(flow)s.", count=count, flow=self.flow_id.name)
        if skipped:
            message += " " + self.env._(
                "%s were not: outside the flow's audience, or already in it under its re-entry policy.", skipped)
        return {'type': 'ir.actions.client', 'tag': 'display_notification', 'params': {
            'type': 'success' if count else 'warning', 'message': message,
            'next': {'type': 'ir.actions.act_window_close'}}}
