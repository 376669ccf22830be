from odoo import api, fields, models
from odoo.tools import SQL

PARTICIPANT_STATES = [
    ('running', 'In Progress'),
    ('completed', 'Completed'),
    ('converted', 'Converted'),
    ('exited', 'Exited'),
    ('stopped', 'Stopped'),
]


class MautomateFlowParticipant(models.Model):
    """ One entry of one contact (in a flow of leads: one lead) in one flow. """
    _name = 'mautomate.flow.participant'
    _description = 'Automation Flow Participant'
    _order = 'id DESC'
    _rec_name = 'partner_id'

    flow_id = fields.Many2one('mautomate.flow', required=True, ondelete='cascade', index=True, readonly=True)
    partner_id = fields.Many2one('res.partner', 'Contact', ondelete='cascade', index=True, readonly=True,
                                 help="The contact in the flow; in a flow of leads, the lead's contact, if any.")
    lead_id = fields.Many2one('crm.lead', ondelete='set null', index='btree_not_null', readonly=True,
                              help="In a flow of leads, the lead in the flow; else the lead whose event enrolled the "
                                   "contact, if any.")
    target = fields.Selection([('partner', 'Contact'), ('lead', 'Lead')], required=True, default='partner', readonly=True,
                              help="Whether the contact or the lead is in the flow: the flow's target when enrolled.")
    state = fields.Selection(PARTICIPANT_STATES, required=True, default='running', readonly=True, index=True)
    trace_ids = fields.One2many('mautomate.flow.trace', 'participant_id', 'Steps', readonly=True)
    exclusive = fields.Boolean(readonly=True, help="Entered under a re-entry policy other than every time: the contact "
                                                   "cannot be in the flow twice at once.")

    _sql_constraints = [
        ('who_check', "CHECK(partner_id IS NOT NULL OR (target = 'lead' AND lead_id IS NOT NULL))",
         "A participant is a contact, or in a flow of leads a lead."),
    ]

    def init(self):
        # Two triggers of one contact (lead) at once cannot both enrol it where it may be in the flow only once at a time.
        self.env.cr.execute("""
            CREATE UNIQUE INDEX IF NOT EXISTS mautomate_flow_participant_partner_running_uniq
                ON mautomate_flow_participant (flow_id, partner_id) WHERE state = 'running' AND exclusive AND target = 'partner';
            CREATE UNIQUE INDEX IF NOT EXISTS mautomate_flow_participant_lead_running_uniq
                ON mautomate_flow_participant (flow_id, lead_id) WHERE state = 'running' AND exclusive AND target = 'lead';
        """)

    @api.depends('target', 'partner_id', 'lead_id')
    def _compute_display_name(self):
        for participant in self:
            record = participant.lead_id if participant.target == 'lead' else participant.partner_id
            participant.display_name = record.display_name

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
             WHERE participant_id = ANY(%s) AND state IN ('scheduled', 'waiting', 'processing')
        """, reason, fields.Datetime.now(), self.env.uid, running.ids))
        self.env['mautomate.flow.trace'].invalidate_model()
