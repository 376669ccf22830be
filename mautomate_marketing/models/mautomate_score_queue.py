from odoo import fields, models


class MautomateScoreQueue(models.Model):
    """ New events to score and people whose scores, grade and stage are to be refreshed: requests only
    insert here (no ledger, contact or lead row is written while a visitor waits, and parallel requests
    never contend), the refresh cron, woken at once, consumes it. """
    _name = 'mautomate.score.queue'
    _description = 'Score Refresh Queue'
    _log_access = False

    partner_id = fields.Many2one('res.partner', ondelete='cascade')
    lead_id = fields.Many2one('crm.lead', ondelete='cascade')
    # Indexed: deleting events (erasure, retention) looks up their queue rows, one lookup per event.
    event_id = fields.Many2one('mautomate.event', ondelete='cascade', index='btree_not_null',
                               help="A new event, to award and refresh its people.")
    fit = fields.Boolean(help="The contact's fields changed: its fit is computed again too.")
