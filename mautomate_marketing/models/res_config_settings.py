import secrets

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

IDENTIFY_SECRET_PARAM = 'mautomate_marketing.identify_secret'


class ResConfigSettings(models.TransientModel):
    _inherit = 'res.config.settings'

    mautomate_retention_days = fields.Integer(
        'Keep Events (days)', config_parameter='mautomate_marketing.retention_days', default=0,
        help="Events older than this are deleted every night. 0 keeps them forever.")
    mautomate_track_internal_users = fields.Boolean(
        'Track Internal Users', config_parameter='mautomate_marketing.track_internal_users',
        help="Also log the pages and forms of logged-in employees. Off by default: their browsing "
             "(the website editor included) is not customer behaviour.")
    mautomate_excluded_ips = fields.Char(
        'Excluded IP Addresses', config_parameter='mautomate_marketing.excluded_ips',
        help="Requests from these addresses or networks are not tracked, e.g. '203.0.113.7, 198.51.100.0/24'.")
    mautomate_tracker_snippet = fields.Text('Tracker Snippet', compute='_compute_mautomate_tracker_snippet')
    mautomate_identify_secret = fields.Char('Identify Secret', compute='_compute_mautomate_identify_secret')

    @api.depends('company_id')
    def _compute_mautomate_tracker_snippet(self):
        snippet = self.env['mautomate.event']._get_tracker_snippet()
        for settings in self:
            settings.mautomate_tracker_snippet = snippet

    @api.depends('company_id')
    def _compute_mautomate_identify_secret(self):
        secret = self._mautomate_get_identify_secret() if self.env.user.has_group('mautomate_marketing.group_mautomate_manager') else False
        for settings in self:
            settings.mautomate_identify_secret = secret

    @api.model
    def _mautomate_get_identify_secret(self):
        """ The secret other sites' servers sign e-mails with for mautomateTracker.identify(), made on first use. """
        params = self.env['ir.config_parameter'].sudo()
        secret = params.get_param(IDENTIFY_SECRET_PARAM)
        if not secret:
            secret = secrets.token_hex(32)
            params.set_param(IDENTIFY_SECRET_PARAM, secret)
        return secret

    def action_mautomate_renew_identify_secret(self):
        if not self.env.user.has_group('mautomate_marketing.group_mautomate_manager'):
            raise AccessError(self.env._("Only Marketing Automation managers can renew the identify secret."))
        self.env['ir.config_parameter'].sudo().set_param(IDENTIFY_SECRET_PARAM, secrets.token_hex(32))

    @api.constrains('mautomate_retention_days')
    def _check_mautomate_retention_days(self):
        if any(settings.mautomate_retention_days < 0 for settings in self):
            raise ValidationError(self.env._("Event retention cannot be negative: use 0 to keep events forever."))
