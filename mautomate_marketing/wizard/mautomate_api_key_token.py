from odoo import fields, models


class MautomateApiKeyToken(models.TransientModel):
    """ Shows a freshly generated token once, so that it can be copied. """
    _name = 'mautomate.api.key.token'
    _description = 'Marketing Automation API Token'

    api_key_id = fields.Many2one('mautomate.api.key', required=True, readonly=True)
    token = fields.Char(readonly=True)
