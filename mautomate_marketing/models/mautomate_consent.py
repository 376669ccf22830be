from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.tools import SQL

# A double opt-in confirmation link works this long; mail held for an address unconfirmed by then is dropped.
CONFIRM_MAX_AGE = timedelta(days=7)


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
        if not consent or not tools.consteq(consent._confirm_token(), token):
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
        self.env['mautomate.flow.engine']._release_held_mails(pending.mapped('email'))
        self.env['mailing.mailing']._mautomate_release_held(pending.mapped('email'), min(pending.mapped('create_date')))

    @api.model
    def _confirmed_emails(self, emails):
        """ The addresses proven by a click on a confirmation link (a single opt-in proves nothing). """
        self.flush_model(['email', 'state', 'confirm_date'])
        self.env.cr.execute(SQL("""
            SELECT DISTINCT email FROM mautomate_consent
             WHERE state = 'confirmed' AND confirm_date IS NOT NULL AND email = ANY(%s)
        """, [email for email in emails if email]))
        return {row[0] for row in self.env.cr.fetchall()}

    @api.model
    def _unconfirmed_emails(self, emails=None):
        """ {e-mail: end of its confirmation period} of the addresses (all when None) with a pending double opt-in
        and none proven by a click: no marketing mail goes to them, even if they consented before without proof. """
        self.flush_model(['email', 'state', 'confirm_date'])
        self.env.cr.execute(SQL("""
            SELECT c.email, max(c.create_date) + %(max_age)s
              FROM mautomate_consent c
             WHERE c.state = 'pending' AND c.email IS NOT NULL %(only)s
               AND NOT EXISTS (SELECT 1 FROM mautomate_consent k
                                WHERE k.email = c.email AND k.state = 'confirmed' AND k.confirm_date IS NOT NULL)
          GROUP BY c.email
        """, max_age=CONFIRM_MAX_AGE, only=SQL("AND c.email = ANY(%s)", list(emails)) if emails is not None else SQL()))
        return dict(self.env.cr.fetchall())
