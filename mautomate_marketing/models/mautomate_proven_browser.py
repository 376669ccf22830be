from odoo import api, fields, models
from odoo.tools import SQL

PROOFS = [
    ('login', 'Login'),
    ('identify', 'Signed Identify'),
    ('optin', 'Double Opt-in Confirmed'),
    ('mail', 'Signed Mail Link'),
]


class MautomateProvenBrowser(models.Model):
    """ A browser whose person is proven: it logged in, clicked a signed link or was named by a signed identify.

    Only these rows make a browser's later events its contact's, and let the contact's own data choose what
    that browser is shown. An e-mail typed in a form is a claim: it names no browser here.
    """
    _name = 'mautomate.proven.browser'
    _description = 'Proven Browser'
    _order = 'write_date DESC, id DESC'
    _rec_name = 'browser_id'

    browser_id = fields.Char('Browser ID', required=True, readonly=True)
    partner_id = fields.Many2one('res.partner', 'Contact', required=True, readonly=True, ondelete='cascade', index=True)
    proof = fields.Selection(PROOFS, required=True, readonly=True)

    _sql_constraints = [('browser_unique', 'UNIQUE(browser_id)', "A browser is proven as one contact.")]

    @api.model
    def _prove(self, browser_id, partner, proof):
        """ Record that `browser_id` is `partner`'s (the latest proof wins). The companies' and internal users'
        contacts are never a browser's: a shared browser stays anonymous after an employee's login. """
        if not browser_id or not partner or partner._mautomate_history_protected():
            return
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_proven_browser (browser_id, partner_id, proof, create_uid, write_uid, create_date, write_date)
            VALUES (%(browser)s, %(partner)s, %(proof)s, %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC')
            ON CONFLICT (browser_id) DO UPDATE SET partner_id = EXCLUDED.partner_id, proof = EXCLUDED.proof,
                                                   write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date
        """, browser=browser_id, partner=partner.id, proof=proof, uid=self.env.uid))
        self.invalidate_model()

    @api.model
    def _partner_of(self, browser_id):
        """ The contact `browser_id` is proven as (superuser), or an empty recordset. """
        Partner = self.env['res.partner'].sudo()
        if not browser_id:
            return Partner
        self.env.cr.execute("SELECT partner_id FROM mautomate_proven_browser WHERE browser_id = %s", [browser_id])
        row = self.env.cr.fetchone()
        return Partner.browse(row[0]) if row else Partner
