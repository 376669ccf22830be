from odoo import fields, models, tools

from .mautomate_flow_step import BRANCHES

SKIP_REASONS = [
    ('no_email', 'No E-mail Address'),
    ('blacklisted', 'Blacklisted'),
    ('opted_out', 'Opted Out'),
    ('goal', 'Goal Reached'),
    ('exited', 'Exited'),
    ('flow_stopped', 'Flow Stopped'),
    ('no_salesperson', 'No Salesperson'),
    ('no_phone', 'No Phone Number'),
    ('invalid_phone', 'Invalid Phone Number'),
    ('duplicate_phone', 'Number Already Texted'),
    ('lead_exists', 'Has an Open Lead'),
    ('no_lead', 'No Open Lead'),
    ('no_contact', 'Lead Without Contact'),
    ('erased', 'Tracking Erased'),
    ('unconfirmed', 'Opt-in Not Confirmed'),
]
TRACE_STATES = [
    ('scheduled', 'Scheduled'),
    ('processing', 'Processing'),
    ('waiting', 'Waiting for Event'),
    ('done', 'Done'),
    ('skipped', 'Skipped'),
    ('error', 'Error'),
]
DEFER_REASONS = [
    ('quiet_hours', 'Quiet Hours'),
    ('frequency_cap', 'Frequency Cap'),
    ('unconfirmed', 'Opt-in Confirmation'),
]


class MautomateFlowTrace(models.Model):
    """ One execution of one step for one participant: scheduled, then done, skipped (and why) or in error. """
    _name = 'mautomate.flow.trace'
    _description = 'Automation Flow Trace'
    _order = 'scheduled_at DESC, id DESC'
    _rec_name = 'step_id'

    participant_id = fields.Many2one('mautomate.flow.participant', required=True, ondelete='cascade', readonly=True)
    step_id = fields.Many2one('mautomate.flow.step', required=True, ondelete='cascade', index=True, readonly=True)
    flow_id = fields.Many2one(related='step_id.flow_id', store=True, index=True)
    partner_id = fields.Many2one(related='participant_id.partner_id', string='Contact')
    state = fields.Selection(TRACE_STATES, required=True, default='scheduled', readonly=True)
    scheduled_at = fields.Datetime('Scheduled', required=True, readonly=True,
                                   help="When the step runs; for a step waiting for an event, its timeout.")
    started_at = fields.Datetime('Started', readonly=True, help="When the step first ran (a wait for an event: began).")
    done_at = fields.Datetime('Done', readonly=True)
    branch = fields.Selection([('entry', 'Entry'), *BRANCHES], 'Came By', readonly=True,
                              help="The edge the participant came by: entry of the flow, or the parent's branch.")
    outcome = fields.Selection(BRANCHES, readonly=True, help="The branch this step continues on (a condition: yes or no).")
    skip_reason = fields.Selection(SKIP_REASONS, readonly=True)
    error_message = fields.Text(readonly=True)
    attempts = fields.Integer(readonly=True, help="Failed attempts; after 3 the step stays in error.")
    mail_mail_id = fields.Many2one('mail.mail', 'E-mail', ondelete='set null', readonly=True)
    deferred_count = fields.Integer('Deferred', readonly=True,
                                    help="How many times the e-mail of this step waited for quiet hours or the frequency cap.")
    defer_reason = fields.Selection(DEFER_REASONS, 'Last Deferred For', readonly=True)

    _sql_constraints = [
        ('participant_step_uniq', 'UNIQUE(participant_id, step_id)', "A participant goes through a step once."),
    ]

    def _mautomate_email(self):
        """ The address a mail step of this trace writes to: the lead's in flows of leads, else the contact's. """
        self.ensure_one()
        if self.flow_id.target == 'lead':
            return self.participant_id.lead_id.email_normalized
        return self.participant_id.partner_id.email_normalized


    def init(self):
        # The engine takes due traces in time order.
        tools.create_index(self.env.cr, 'mautomate_flow_trace_due_idx', self._table, ['scheduled_at', 'id'],
                           where="state IN ('scheduled', 'waiting')")
        # Whether a participant has steps left (a webhook call in hand too), asked for every participant of a batch.
        tools.create_index(self.env.cr, 'mautomate_flow_trace_open_participant_idx', self._table, ['participant_id'],
                           where="state IN ('scheduled', 'waiting', 'processing')")
