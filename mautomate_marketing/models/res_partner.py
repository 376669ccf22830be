from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError


class ResPartner(models.Model):
    _inherit = 'res.partner'

    mautomate_no_tracking = fields.Boolean(
        'Do Not Track', groups='base.group_user',
        help="This contact asked not to be tracked: no page view, e-mail or API event is logged for it.")
    mautomate_event_ids = fields.One2many('mautomate.event', 'partner_id', 'Marketing Events', groups='base.group_user')
    mautomate_event_count = fields.Integer('Events', compute='_compute_mautomate_event_count', groups='base.group_user')

    def _compute_mautomate_event_count(self):
        counts = dict(self.env['mautomate.event']._read_group([('partner_id', 'in', self.ids)], ['partner_id'], ['__count']))
        for partner in self:
            partner.mautomate_event_count = counts.get(partner._origin, 0)

    def action_mautomate_timeline(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.display_name, [('partner_id', '=', self.id)])

    def action_mautomate_erase_tracking(self):
        """ Right to erasure: delete the contacts' events and their website visitor history. """
        if not self.env.user.has_group('mautomate_marketing.group_mautomate_manager'):
            raise AccessError(_("Only Marketing Automation managers can erase tracking data."))
        self.env['mautomate.event'].sudo().search([('partner_id', 'in', self.ids)]).unlink()
        self.env['website.visitor'].sudo().search([('partner_id', 'in', self.ids)]).unlink()
        for partner in self:
            partner.sudo().message_post(body=_("Tracking data erased by %s.", self.env.user.name))

    @api.model
    def _mautomate_find_or_create_by_email(self, names_by_email):
        """ {e-mail: name or None} -> {normalized e-mail: partner}, the oldest contact with that
        e-mail, else a new one; never matched by name. """
        names = {tools.email_normalize(email): name for email, name in names_by_email.items() if tools.email_normalize(email)}
        partners = {}
        for partner in self.sudo().search([('email_normalized', 'in', list(names))], order='id'):
            partners.setdefault(partner.email_normalized, partner)
        missing = [email for email in names if email not in partners]
        created = self.sudo().create([{'name': names[email] or email, 'email': email} for email in missing])
        partners.update(zip(missing, created))
        return partners
