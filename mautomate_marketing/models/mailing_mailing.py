from odoo import api, models
from odoo.osv import expression


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
