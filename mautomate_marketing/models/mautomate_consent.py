from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..tools.batches import execute_in_batches

# A double opt-in confirmation link works this long; mail held for an address unconfirmed by then is dropped.
CONFIRM_MAX_AGE = timedelta(days=7)
# Consents of an erased contact keep their proof this long by default (Settings): three years.
CONSENT_PROOF_DAYS = 1095


class MautomateConsent(models.Model):
    """ Proof of a consent given on a form: what the person agreed to, when and from where. """
    _name = 'mautomate.consent'
    _description = 'Marketing Consent'
    _order = 'create_date DESC, id DESC'
    _rec_name = 'email'

    partner_id = fields.Many2one('res.partner', 'Contact', required=True, ondelete='cascade', index=True, readonly=True)
    form_id = fields.Many2one('mautomate.form', ondelete='set null', readonly=True)
    email = fields.Char('E-mail', readonly=True, index=True, help="The e-mail address the consent was given for.")
    text = fields.Text('Consent Text', readonly=True, help="The text the person agreed to, as shown to them.")
    ip_address = fields.Char('IP Address', readonly=True)
    create_date = fields.Datetime('Given On', readonly=True)
    state = fields.Selection([('pending', 'Waiting for Confirmation'), ('confirmed', 'Confirmed')], required=True,
                             readonly=True, help="Waiting for confirmation: the form asks for double opt-in and the "
                                                 "person has not clicked the confirmation link yet.")
    confirm_date = fields.Datetime('Confirmed On', readonly=True,
                                   help="When the address was proven by a click on a double opt-in confirmation link.")
    confirm_ip_address = fields.Char('Confirmed From', readonly=True)
    erased_on = fields.Datetime(
        readonly=True, index='btree_not_null',
        help="The contact's tracking data was erased: this consent no longer counts, and keeps its proof (e-mail, IP "
             "addresses) only for the period Settings keeps consent proof, then is anonymised.")

    @api.model_create_multi
    def create(self, vals_list):
        consents = super().create(vals_list)
        # A consent given again (single opt-in) is the erased person opting in again.
        consents.filtered(lambda consent: consent.state == 'confirmed').partner_id._mautomate_opt_in()
        return consents

    # ------------------------------------------------------------
    # Double opt-in
    # ------------------------------------------------------------

    def _confirm_token(self):
        self.ensure_one()
        return f'{self.id}-{tools.hmac(self.env(su=True), "mautomate_consent_confirm", (self.id, self.email))}'

    def _confirm_url(self):
        self.ensure_one()
        return f'{self.get_base_url()}/mautomate/consent/confirm/{self._confirm_token()}'

    @api.model
    def _from_confirm_token(self, token):
        """ The consent a confirmation token names, while its link is valid; else an empty recordset. """
        consent_id = (token or '').partition('-')[0]
        if not consent_id.isdigit():
            return self.browse()
        consent = self.sudo().browse(int(consent_id)).exists()
        # The link of a consent erased since confirms nothing (it would opt the erased person in again).
        if not consent or consent.erased_on or not tools.consteq(consent._confirm_token(), token):
            return self.browse()
        if consent.state == 'pending' and consent.create_date < fields.Datetime.now() - CONFIRM_MAX_AGE:
            return self.browse()
        return consent

    def _request_confirmation(self):
        """ Pending consents: the confirmation mail goes out; an address proven by a click before needs no second proof. """
        proven = self._confirmed_emails(self.mapped('email'))
        confirmed = self.filtered(lambda consent: consent.email in proven)
        confirmed.write({'state': 'confirmed', 'confirm_date': fields.Datetime.now()})
        template = self.env.ref('mautomate_marketing.mail_template_consent_confirm').sudo()
        for consent in self - confirmed:
            template.send_mail(consent.id)

    def _confirm(self, ip_address):
        """ Confirm pending consents; the marketing mail held for their addresses goes out. """
        pending = self.filtered(lambda consent: consent.state == 'pending')
        if not pending:
            return
        pending.write({'state': 'confirmed', 'confirm_date': fields.Datetime.now(), 'confirm_ip_address': ip_address})
        pending.partner_id._mautomate_opt_in()
        self.env['mautomate.flow.engine']._release_held_mails(pending.mapped('email'))
        self.env['mailing.mailing']._mautomate_release_held(pending.mapped('email'), min(pending.mapped('create_date')))

    @api.model
    def _confirmed_emails(self, emails):
        """ The addresses proven by a click on a confirmation link (a single opt-in, an erased consent prove nothing). """
        self.flush_model(['email', 'state', 'confirm_date', 'erased_on'])
        self.env.cr.execute(SQL("""
            SELECT DISTINCT email FROM mautomate_consent
             WHERE state = 'confirmed' AND confirm_date IS NOT NULL AND erased_on IS NULL AND email = ANY(%s)
        """, [email for email in emails if email]))
        return {row[0] for row in self.env.cr.fetchall()}

    @api.model
    def _unconfirmed_emails(self, emails=None):
        """ {e-mail: end of its confirmation period} of the addresses (all when None) with a pending double opt-in
        and none proven by a click: no marketing mail goes to them, even if they consented before without proof. """
        self.flush_model(['email', 'state', 'confirm_date', 'erased_on'])
        self.env.cr.execute(SQL("""
            SELECT c.email, max(c.create_date) + %(max_age)s
              FROM mautomate_consent c
             WHERE c.state = 'pending' AND c.email IS NOT NULL %(only)s
               AND NOT EXISTS (SELECT 1 FROM mautomate_consent k
                                WHERE k.email = c.email AND k.state = 'confirmed' AND k.confirm_date IS NOT NULL
                                  AND k.erased_on IS NULL)
          GROUP BY c.email
        """, max_age=CONFIRM_MAX_AGE, only=SQL("AND c.email = ANY(%s)", list(emails)) if emails is not None else SQL()))
        return dict(self.env.cr.fetchall())

    # ------------------------------------------------------------
    # Erasure
    # ------------------------------------------------------------

    @api.model
    def _get_proof_days(self):
        """ How many days the consents of an erased contact keep their proof (Settings, at least one). """
        value = self.env['ir.config_parameter'].sudo().get_param('mautomate_marketing.consent_proof_days')
        try:
            return max(int(value), 1) if value else CONSENT_PROOF_DAYS
        except ValueError:
            return CONSENT_PROOF_DAYS

    def _mark_erased(self):
        """ These consents' contact was erased: they no longer count, and keep their proof for the proof period. """
        self.flush_model()
        self.env.cr.execute(SQL("""
            UPDATE mautomate_consent SET erased_on = %s, write_date = now() at time zone 'UTC', write_uid = %s
             WHERE id = ANY(%s) AND erased_on IS NULL
        """, fields.Datetime.now(), self.env.uid, self.ids))
        self.invalidate_model(['erased_on'])

    @api.model
    def _cron_anonymise_erased_consents(self, batch_size=1000, max_batches=50):
        """ Nightly: the consents of contacts erased longer ago than the proof period lose their e-mail and IP
        addresses, a committed batch at a time (outside tests). Returns how many. """
        cutoff = fields.Datetime.now() - timedelta(days=self._get_proof_days())
        self.flush_model()
        anonymised = execute_in_batches(self.env.cr, SQL("""
            -- the batch taken once (a subquery in the WHERE may be run again, and take more)
            WITH batch AS MATERIALIZED (
                SELECT id FROM mautomate_consent
                 WHERE erased_on <= %s
                   AND (email IS NOT NULL OR ip_address IS NOT NULL OR confirm_ip_address IS NOT NULL)
                 LIMIT %s FOR UPDATE SKIP LOCKED)
            UPDATE mautomate_consent c SET email = NULL, ip_address = NULL, confirm_ip_address = NULL,
                   write_date = now() at time zone 'UTC'
              FROM batch WHERE c.id = batch.id
        """, cutoff, batch_size), batch_size, max_batches)
        self.invalidate_model(['email', 'ip_address', 'confirm_ip_address'])
        self.env.cr.execute(SQL("""
            SELECT count(*) FROM mautomate_consent
             WHERE erased_on <= %s AND (email IS NOT NULL OR ip_address IS NOT NULL OR confirm_ip_address IS NOT NULL)
        """, cutoff))
        self.env['ir.cron']._notify_progress(done=anonymised, remaining=self.env.cr.fetchone()[0])
        return anonymised
