from odoo import api, models, tools

# trace_status reached -> event logged; each is logged once, when the status is first reached.
STATUS_EVENT_TYPES = {
    'sent': 'email_sent',
    'open': 'email_open',
    'reply': 'email_reply',
    'bounce': 'email_bounce',
}


class MailingTrace(models.Model):
    _inherit = 'mailing.trace'

    @api.model_create_multi
    def create(self, vals_list):
        traces = super().create(vals_list)
        for status, event_type in STATUS_EVENT_TYPES.items():
            traces.filtered_domain([('trace_status', '=', status)])._mautomate_log_events(event_type)
        return traces

    def write(self, vals):
        event_type = STATUS_EVENT_TYPES.get(vals.get('trace_status'))
        changed = self.filtered(lambda trace: trace.trace_status != vals['trace_status']) if event_type else self.browse()
        result = super().write(vals)
        changed._mautomate_log_events(event_type)
        return result

    def _mautomate_log_events(self, event_type, url=None, anonymous_id=None):
        """ Log one e-mail event per trace, on the recipient's contact and lead. """
        traces = self.filtered(lambda trace: trace.trace_type == 'mail')
        if not traces:
            return self.env['mautomate.event']
        recipients = traces._mautomate_recipients()
        return self.env['mautomate.event'].sudo()._ingest([{
            'event_type': event_type,
            'source': 'email',
            'name': trace.mass_mailing_id.subject or trace.mass_mailing_id.name,
            'url': url,
            'anonymous_id': anonymous_id,
            'partner_id': recipients[trace.id][0],
            'lead_id': recipients[trace.id][1],
            'res_model': 'mailing.mailing' if trace.mass_mailing_id else None,
            'res_id': trace.mass_mailing_id.id or None,
            'campaign_id': trace.campaign_id.id or None,
            'source_id': trace.source_id.id or None,
            'medium_id': trace.medium_id.id or None,
            'payload': {'email': trace.email} if trace.email else None,
        } for trace in traces])

    def _mautomate_recipients(self):
        """ {trace id: (partner id, lead id)}: the mailed document's contact, else the contact with that e-mail. """
        lead_ids = [trace.res_id for trace in self if trace.model == 'crm.lead']
        lead_partners = {lead.id: lead.partner_id.id for lead in self.env['crm.lead'].sudo().browse(lead_ids).exists()}
        emails = [trace.email for trace in self if trace.email]
        partners_by_email = {}
        if emails:
            for partner in self.env['res.partner'].sudo().search([('email_normalized', 'in', emails)], order='id'):
                partners_by_email.setdefault(partner.email_normalized, partner.id)
        recipients = {}
        for trace in self:
            if trace.model == 'res.partner':
                partner_id = trace.res_id
            else:
                partner_id = lead_partners.get(trace.res_id) if trace.model == 'crm.lead' else None
            recipients[trace.id] = (
                partner_id or partners_by_email.get(trace.email),
                trace.res_id if trace.model == 'crm.lead' and trace.res_id in lead_partners else None,
            )
        return recipients

    def _mautomate_partner(self):
        self.ensure_one()
        return self.env['res.partner'].browse(self._mautomate_recipients()[self.id][0])

    def _mautomate_link_signature(self):
        """ The signature a mail's tracked links carry: a click binds its browser only with it. """
        self.ensure_one()
        return tools.hmac(self.env(su=True), 'mautomate_mail_link', self.id)

    def _mautomate_check_link_signature(self, signature):
        self.ensure_one()
        return isinstance(signature, str) and tools.consteq(self._mautomate_link_signature(), signature)
