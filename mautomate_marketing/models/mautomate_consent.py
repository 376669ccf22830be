from odoo import fields, models


class MautomateConsent(models.Model):
    """ Proof of a consent given on a form: what the person agreed to, when and from where. """
    _name = 'mautomate.consent'
    _description = 'Marketing Consent'
    _order = 'create_date DESC, id DESC'
    _rec_name = 'email'

    partner_id = fields.Many2one('res.partner', 'Contact', required=True, ondelete='cascade', index=True, readonly=True)
    form_id = fields.Many2one('mautomate.form', ondelete='set null', readonly=True)
    email = fields.Char('E-mail', readonly=True, help="The e-mail address the consent was given for.")
    text = fields.Text('Consent Text', readonly=True, help="The text the person agreed to, as shown to them.")
    ip_address = fields.Char('IP Address', readonly=True)
    create_date = fields.Datetime('Given On', readonly=True)
    state = fields.Selection([('pending', 'Waiting for Confirmation'), ('confirmed', 'Confirmed')], required=True,
                             readonly=True, help="Waiting for confirmation: the form asks for double opt-in and the "
                                                 "person has not clicked the confirmation link yet.")
