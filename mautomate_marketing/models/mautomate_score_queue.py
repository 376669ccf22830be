from odoo import fields, models


class MautomateScoreQueue(models.Model):
    """ People whose scores, grade and stage are to be refreshed: requests only insert here (no contact
    or lead row is written while a visitor waits, and parallel requests never contend), the refresh
    cron, woken at once, consumes it. """
    _name = 'mautomate.score.queue'
    _description = 'Score Refresh Queue'
    _log_access = False

    partner_id = fields.Many2one('res.partner', ondelete='cascade')
    lead_id = fields.Many2one('crm.lead', ondelete='cascade')
    fit = fields.Boolean(help="The contact's fields changed: its fit is computed again too.")
