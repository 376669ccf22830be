from odoo import fields, models
from odoo.osv import expression


class CrmLead(models.Model):
    _inherit = 'crm.lead'

    mautomate_event_count = fields.Integer('Events', compute='_compute_mautomate_event_count')

    def _compute_mautomate_event_count(self):
        Event = self.env['mautomate.event']
        for lead in self:
            lead.mautomate_event_count = Event.search_count(lead._mautomate_timeline_domain()) if lead._origin.id else 0

    def _mautomate_timeline_domain(self):
        """ The lead's own events, its contact's, those of contacts with its e-mail, and its visitors'. """
        self.ensure_one()
        domains = [[('lead_id', '=', self._origin.id)]]
        if self.partner_id:
            domains.append([('partner_id', '=', self.partner_id.id)])
        if self.email_normalized:
            domains.append([('partner_id.email_normalized', '=', self.email_normalized)])
        if self.visitor_ids:
            domains.append([('visitor_id', 'in', self.visitor_ids.ids)])
        return expression.OR(domains)

    def action_mautomate_timeline(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.display_name, self._mautomate_timeline_domain())
