import logging

from odoo import models

_logger = logging.getLogger(__name__)


class MailActivity(models.Model):
    _inherit = 'mail.activity'

    def _action_done(self, feedback=False, attachment_ids=None):
        """ An activity done on a contact or a lead is an event of its person: flows wait for it (a call made). """
        vals_list = self._mautomate_done_event_values()
        result = super()._action_done(feedback=feedback, attachment_ids=attachment_ids)
        if vals_list:
            try:
                with self.env.cr.savepoint():
                    self.env['mautomate.event'].sudo()._ingest(vals_list)
            except Exception:
                # Logging the event never stops the user from marking the activity done.
                _logger.exception("Could not log activities done as events")
        return result

    def _mautomate_done_event_values(self):
        """ The events of these activities, read before they are deleted: those on contacts and leads. """
        vals_list = []
        leads = self.env['crm.lead'].sudo().browse(
            [activity.res_id for activity in self if activity.res_model == 'crm.lead']).exists()
        partner_by_lead = {lead.id: lead.partner_id.id for lead in leads}
        for activity in self.filtered(lambda activity: activity.res_model in ('res.partner', 'crm.lead')):
            if activity.res_model == 'crm.lead' and activity.res_id not in partner_by_lead:
                continue
            lead_id = activity.res_id if activity.res_model == 'crm.lead' else None
            vals_list.append({
                'event_type': 'activity_done',
                'source': 'crm',
                'name': activity.summary or activity.activity_type_id.name,
                'partner_id': (partner_by_lead[lead_id] or None) if lead_id else activity.res_id,
                'lead_id': lead_id,
                'res_model': 'mail.activity.type',
                'res_id': activity.activity_type_id.id or None,
            })
        return vals_list
