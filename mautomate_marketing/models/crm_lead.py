from collections import defaultdict

from odoo import fields, models
from odoo.osv import expression


class CrmLead(models.Model):
    _inherit = 'crm.lead'

    mautomate_event_count = fields.Integer('Events', compute='_compute_mautomate_event_count')

    def _compute_mautomate_event_count(self):
        # Counted in two disjoint parts: the contacts' events from their index alone (a contact may
        # have many), then the lead's and its visitors' events of no such contact.
        Event = self.env['mautomate.event']
        people = self._mautomate_timeline_people()
        for lead in self:
            partner_ids, others = people[lead]
            count = 0
            if lead._origin.id and partner_ids:
                count += Event.search_count([('partner_id', 'in', partner_ids)])
            if lead._origin.id and others:
                count += Event.search_count(expression.AND([
                    expression.OR(others), ['|', ('partner_id', '=', False), ('partner_id', 'not in', partner_ids)]]))
            lead.mautomate_event_count = count

    def _mautomate_timeline_domain(self):
        """ The lead's own events, its contact's, those of contacts with its e-mail, and its visitors'. """
        self.ensure_one()
        partner_ids, others = self._mautomate_timeline_people()[self]
        domains = [[('partner_id', 'in', partner_ids)]] if partner_ids else []
        return expression.OR(domains + others) if domains or others else expression.FALSE_DOMAIN

    def _mautomate_timeline_people(self):
        """ {lead: (ids of its contacts, [domains of its own and its visitors' events])}.

        The contacts, the lead's and those with its e-mail, are found first in one indexed search,
        so that the log is read through its indexes only (a join on the contact's e-mail scans it whole).
        """
        emails = {email for email in self.mapped('email_normalized') if email}
        partner_ids_by_email = defaultdict(set)
        if emails:
            # Like a domain on partner_id.email_normalized: archived contacts too, within the user's record rules.
            partners = self.env['res.partner'].with_context(active_test=False).search_fetch(
                [('email_normalized', 'in', list(emails))], ['email_normalized'])
            for partner in partners:
                partner_ids_by_email[partner.email_normalized].add(partner.id)
        people = {}
        for lead in self:
            partner_ids = set(lead.partner_id.ids) | partner_ids_by_email[lead.email_normalized]
            others = [[('lead_id', '=', lead._origin.id)]] if lead._origin.id else []
            if lead.visitor_ids:
                others.append([('visitor_id', 'in', lead.visitor_ids.ids)])
            people[lead] = (sorted(partner_ids), others)
        return people

    def action_mautomate_timeline(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.display_name, self._mautomate_timeline_domain())

    def mautomate_get_timeline_data(self, event_types=None, limit=None):
        """ The Timeline tab: chart, type counts and the latest events by day and visit. """
        self.ensure_one()
        return self.env['mautomate.event']._get_timeline_data(self._mautomate_timeline_domain(), event_types, limit)

    # A website form links a visitor's lead to an existing contact: the lead keeps its answers,
    # the contact its values (only its empty fields are filled).
    def _get_partner_email_update(self, force_void=True):
        if self.env.context.get('mautomate_keep_partner_fields') and self.partner_id.email:
            return False
        return super()._get_partner_email_update(force_void=force_void)

    def _get_partner_phone_update(self, force_void=True):
        if self.env.context.get('mautomate_keep_partner_fields') and self.partner_id.phone:
            return False
        return super()._get_partner_phone_update(force_void=force_void)
