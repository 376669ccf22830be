from odoo import fields, models

from ..models.mautomate_flow_step import BRANCHES
from ..models.mautomate_flow_trace import DEFER_REASONS, SKIP_REASONS, TRACE_STATES


class MautomateFlowTestLine(models.TransientModel):
    """ One step a tested contact reached: when (after its entry), how it went, and the mail it would get. """
    _name = 'mautomate.flow.test.line'
    _description = 'Flow Test Step'
    _order = 'test_id, sequence'

    test_id = fields.Many2one('mautomate.flow.test', required=True, ondelete='cascade')
    sequence = fields.Integer()
    step_id = fields.Many2one('mautomate.flow.step', ondelete='cascade')
    kind = fields.Selection(related='step_id.kind')
    at = fields.Datetime('When', help="Simulated: the test jumps over the delays.")
    after = fields.Char('After Entry')
    state = fields.Selection(TRACE_STATES)
    outcome = fields.Selection(BRANCHES, 'Branch Taken')
    skip_reason = fields.Selection(SKIP_REASONS)
    deferred_count = fields.Integer('Deferred')
    defer_reason = fields.Selection(DEFER_REASONS, 'Deferred For')
    error_message = fields.Text()
    note = fields.Char(help="What the step would do that the test does not, e.g. the host a webhook would call.")
    email_to = fields.Char('To')
    subject = fields.Char()
    body_html = fields.Html('Body')
