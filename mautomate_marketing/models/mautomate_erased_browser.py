from odoo import fields, models

# How a Browser ID is kept once its person's tracking is erased: only its hash (the ingest computes the same in SQL).
BROWSER_HASH_SQL = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"


class MautomateErasedBrowser(models.Model):
    """ A browser of a contact whose tracking was erased, by a hash of its Browser ID: nothing it sends is logged,
    nor does it name its contact again, until the contact opts in again (see res.partner._mautomate_opt_in). """
    _name = 'mautomate.erased.browser'
    _description = 'Browser of an Erased Contact'
    _log_access = False

    browser_hash = fields.Char(required=True, readonly=True)
    partner_id = fields.Many2one('res.partner', 'Contact', required=True, readonly=True, ondelete='cascade', index=True)

    _sql_constraints = [
        ('browser_hash_uniq', 'UNIQUE(browser_hash)', "A browser is kept once."),
    ]
