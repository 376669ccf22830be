from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = 'res.config.settings'

    mautomate_retention_days = fields.Integer(
        'Keep Events (days)', config_parameter='mautomate_marketing.retention_days', default=0,
        help="Events older than this are deleted every night. 0 keeps them forever.")
    mautomate_tracker_snippet = fields.Text('Tracker Snippet', compute='_compute_mautomate_tracker_snippet')

    @api.depends('company_id')
    def _compute_mautomate_tracker_snippet(self):
        snippet = self.env['mautomate.event']._get_tracker_snippet()
        for settings in self:
            settings.mautomate_tracker_snippet = snippet
