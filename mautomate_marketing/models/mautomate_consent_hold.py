from odoo import api, fields, models
from odoo.osv import expression
from odoo.tools import SQL

from .mautomate_flow_engine import MAIL_KINDS


class MautomateFlowTrace(models.Model):
    _inherit = 'mautomate.flow.trace'

    skip_reason = fields.Selection(selection_add=[('unconfirmed', 'Opt-in Not Confirmed')])
    defer_reason = fields.Selection(selection_add=[('unconfirmed', 'Opt-in Confirmation')])

    def _mautomate_email(self):
        """ The address a mail step of this trace writes to: the lead's in flows of leads, else the contact's. """
        self.ensure_one()
        if self.flow_id.target == 'lead':
            return self.participant_id.lead_id.email_normalized
        return self.participant_id.partner_id.email_normalized


class MautomateFlowEngine(models.AbstractModel):
    """ Double opt-in: a flow's e-mail to an address waiting for its confirmation is held (deferred to the end of
    the confirmation period, released at once by the confirmation); unconfirmed by then, the step is skipped
    (reason "unconfirmed") and the flow goes on. """
    _inherit = 'mautomate.flow.engine'

    @api.model
    def _defer_mails(self, traces, now):
        mails = traces.filtered(lambda trace: trace.step_id.kind in MAIL_KINDS)
        emails = {trace.id: trace._mautomate_email() for trace in mails}
        waiting = self.env['mautomate.consent']._unconfirmed_emails({email for email in emails.values() if email})
        deferrals = {trace_id: (waiting[email], 'unconfirmed') for trace_id, email in emails.items()
                     if email in waiting and waiting[email] > now}
        self._save_deferrals(deferrals)
        # Held past the confirmation period: the address was never confirmed, the step is skipped.
        expired = [trace_id for trace_id, email in emails.items() if email in waiting and waiting[email] <= now]
        if expired:
            self._save_results(dict.fromkeys(expired, ('skipped', 'always', 'unconfirmed')), now)
            self._schedule_children(expired, now)
        held = traces.browse(list(deferrals) + expired)
        return held | super()._defer_mails(traces - held, now)

    @api.model
    def _release_held_mails(self, emails):
        """ The flow e-mails held for these now confirmed addresses are due at once. """
        self.env['mautomate.flow.trace'].flush_model()
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_trace t
               SET scheduled_at = %s, write_date = now() at time zone 'UTC'
              FROM mautomate_flow_participant p
              LEFT JOIN res_partner rp ON rp.id = p.partner_id
              LEFT JOIN crm_lead l ON l.id = p.lead_id
              JOIN mautomate_flow f ON f.id = p.flow_id
             WHERE t.participant_id = p.id AND t.state = 'scheduled' AND t.defer_reason = 'unconfirmed'
               AND (CASE WHEN f.target = 'lead' THEN l.email_normalized ELSE rp.email_normalized END) = ANY(%s)
        """, fields.Datetime.now(), list(emails)))
        if self.env.cr.rowcount:
            self.env['mautomate.flow.trace'].invalidate_model(['scheduled_at'])
            self._wake()


class MailingMailing(models.Model):
    """ Double opt-in: a mass mailing leaves out the records of addresses waiting for (or that never gave) their
    confirmation, without a trace; a confirmation sends them the mailings sent meanwhile. """
    _inherit = 'mailing.mailing'

    def _get_remaining_recipients(self):
        res_ids = super()._get_remaining_recipients()
        target = self.env[self.mailing_model_real]
        if not res_ids or 'email_normalized' not in target._fields:
            return res_ids
        unconfirmed = self.env['mautomate.consent']._unconfirmed_emails()
        if not unconfirmed:
            return res_ids
        held = set(target.with_context(active_test=False).search(
            [('id', 'in', res_ids), ('email_normalized', 'in', list(unconfirmed))]).ids)
        return [res_id for res_id in res_ids if res_id not in held]

    @api.model
    def _mautomate_release_held(self, emails, since):
        """ Send the mailings sent since `since` (the first held consent) to the records of these addresses that
        their recipients' domain holds and that they did not mail. """
        mailings = self.sudo().search([('state', '=', 'done'), ('sent_date', '>=', since)])
        # An A/B test's sample is drawn at random: its held recipients get the winner.
        for mailing in mailings.filtered(lambda mailing: not mailing.ab_testing_enabled or mailing.ab_testing_is_winner_mailing):
            target = self.env[mailing.mailing_model_real].sudo()
            if 'email_normalized' not in target._fields:
                continue
            records = target.search(expression.AND([mailing._get_recipients_domain(),
                                                    [('email_normalized', 'in', list(emails))]]))
            mailed = self.env['mailing.trace'].sudo().search(
                [('mass_mailing_id', '=', mailing.id), ('model', '=', target._name), ('res_id', 'in', records.ids)])
            res_ids = [res_id for res_id in records.ids if res_id not in set(mailed.mapped('res_id'))]
            if res_ids:
                sent_date = mailing.sent_date
                mailing._action_send_mail(res_ids)
                mailing.sent_date = sent_date  # the mailing keeps the date it went out to everyone
