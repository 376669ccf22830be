from odoo import fields, models


class MautomateFlowTriggerFire(models.Model):
    """ One occurrence a scanned trigger has taken: a record of another model that matched, a date reached
    (its day), an inactivity (its last event's day). The cron enrols each occurrence once, however often it
    runs, and a crashed batch is taken again. """
    _name = 'mautomate.flow.trigger.fire'
    _description = 'Automation Flow Trigger Occurrence'
    _log_access = False

    trigger_id = fields.Many2one('mautomate.flow.trigger', required=True, ondelete='cascade', readonly=True)
    res_id = fields.Integer('Record ID', required=True, readonly=True)
    occurrence = fields.Char(required=True, default='', readonly=True,
                             help="The day of a date or inactivity; empty for a record: it enrols once.")
    enrolled = fields.Boolean(readonly=True, help="False for a record that already matched when the trigger started.")

    _sql_constraints = [
        ('trigger_record_occurrence_uniq', 'UNIQUE(trigger_id, res_id, occurrence)', "An occurrence enrols once."),
    ]
