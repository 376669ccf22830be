from odoo import fields, models


class MailMessage(models.Model):
    _inherit = 'mail.message'

    mautomate_tracking = fields.Boolean(
        'Written by Tracking', readonly=True, copy=False,
        help="Posted by marketing automation from what a person did (form answers, scores): erased with the person's "
             "tracking data, unlike the salespeople's own messages.")
