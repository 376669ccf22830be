from odoo import fields, models
from odoo.tools import SQL

PARTICIPANT_STATES = [
    ('running', 'In Progress'),
    ('completed', 'Completed'),
    ('converted', 'Converted'),
    ('exited', 'Exited'),
    ('stopped', 'Stopped'),
]


class MautomateFlowParticipant(models.Model):
    """ One entry of one contact in one flow. """
    _name = 'mautomate.flow.participant'
    _description = 'Automation Flow Participant'
    _order = 'id DESC'
    _rec_name = 'partner_id'

    flow_id = fields.Many2one('mautomate.flow', required=True, ondelete='cascade', index=True, readonly=True)
    partner_id = fields.Many2one('res.partner', 'Contact', required=True, ondelete='cascade', index=True, readonly=True)
    lead_id = fields.Many2one('crm.lead', ondelete='set null', index='btree_not_null', readonly=True,
                              help="The lead whose event enrolled the contact, if any.")
    state = fields.Selection(PARTICIPANT_STATES, required=True, default='running', readonly=True, index=True)
    trace_ids = fields.One2many('mautomate.flow.trace', 'participant_id', 'Steps', readonly=True)
    exclusive = fields.Boolean(readonly=True, help="Entered under a re-entry policy other than every time: the contact "
                                                   "cannot be in the flow twice at once.")

    def init(self):
        # Two triggers of one contact at once cannot both enrol it where it may be in the flow only once at a time.
        self.env.cr.execute("""
            CREATE UNIQUE INDEX IF NOT EXISTS mautomate_flow_participant_running_uniq
                ON mautomate_flow_participant (flow_id, partner_id) WHERE state = 'running' AND exclusive
        """)

    def _finish(self, state, reason):
        """ Take running participants out of their flow (set-based): their pending steps are skipped with `reason`. """
        running = self.filtered(lambda participant: participant.state == 'running')
        if not running:
            return
        self.env['mautomate.flow.trace'].flush_model()
        running.write({'state': state})
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_trace SET state = 'skipped', skip_reason = %s, done_at = %s,
                   write_date = now() at time zone 'UTC', write_uid = %s
             WHERE participant_id = ANY(%s) AND state IN ('scheduled', 'waiting')
        """, reason, fields.Datetime.now(), self.env.uid, running.ids))
        self.env['mautomate.flow.trace'].invalidate_model()
