from contextlib import closing

from odoo import Command, fields, models
from odoo.exceptions import UserError

from ..models.mautomate_flow_participant import PARTICIPANT_STATES
from ..tools import outgoing

# A flow's longest run in a test, in engine rounds (each round jumps to the next due step).
MAX_ROUNDS = 200


class MautomateFlowTest(models.TransientModel):
    """ Test a flow on one contact: what would happen, step after step, with the delays skipped. The run is
    real (the engine runs every step for a participant) but on a cursor of its own that is always rolled
    back: no mail leaves, the contact gets no tag, points nor activity, and no figure counts it. Mails are
    rendered only, not sent to the tester either: their tracked links and open pixel would log the tester's
    clicks as the contact's. """
    _name = 'mautomate.flow.test'
    _description = 'Test a Flow on One Contact'

    flow_id = fields.Many2one('mautomate.flow', required=True, ondelete='cascade')
    partner_id = fields.Many2one('res.partner', 'Contact', required=True, ondelete='cascade')
    line_ids = fields.One2many('mautomate.flow.test.line', 'test_id', 'What Would Happen', readonly=True)
    tested = fields.Boolean(readonly=True)
    end_state = fields.Selection(PARTICIPANT_STATES, 'The Contact Ends As', readonly=True,
                                 help="In Progress: the flow was still running after the test's longest run.")
    mail_count = fields.Integer('E-mails', readonly=True)

    def action_run(self):
        self.ensure_one()
        self.flow_id.check_access('write')
        self.flow_id._check_startable()  # what starting it would refuse, the test refuses with the same message
        end_state, lines = self._simulate()
        self.write({'line_ids': [Command.clear()] + [Command.create(vals) for vals in lines], 'tested': True,
                    'end_state': end_state, 'mail_count': sum(1 for vals in lines if vals.get('subject') is not None)})
        return {'type': 'ir.actions.act_window', 'name': self.env._("Test Flow"), 'res_model': self._name,
                'res_id': self.id, 'view_mode': 'form', 'target': 'new'}

    def _simulate(self):
        """ Run the flow for the contact on a cursor of its own, rolled back whatever happens. Returns the
        participant's final state and the test lines' values. """
        flow_id, partner_id = self.flow_id.id, self.partner_id.id
        self.env.flush_all()
        with closing(self.env.registry.cursor()) as cr:  # closing rolls it back
            env = self.env(cr=cr, su=True)
            return env[self._name]._simulate_run(env['mautomate.flow'].browse(flow_id), env['res.partner'].browse(partner_id))

    def _simulate_run(self, flow, partner):
        """ The engine's run of `flow` for `partner` as if time jumped to each next due step. """
        Engine, Trace = self.env['mautomate.flow.engine'], self.env['mautomate.flow.trace']
        participant = self.env['mautomate.flow.participant'].create({'flow_id': flow.id, 'partner_id': partner.id})
        start = clock = fields.Datetime.now()
        notes = {}
        Engine._schedule_first_steps(flow, participant.ids)
        for _round in range(MAX_ROUNDS):
            pending = Trace.search([('participant_id', '=', participant.id), ('state', 'in', ('scheduled', 'waiting'))],
                                   order='scheduled_at, id')
            if not pending:
                break
            clock = max(clock, pending[0].scheduled_at)
            Engine._process_traces(pending.filtered(lambda trace, clock=clock: trace.scheduled_at <= clock).ids, clock)
            notes.update(self._simulate_webhooks(participant, clock))
        traces = participant.trace_ids.sorted(lambda trace: (trace.done_at or trace.scheduled_at, trace.id))
        return participant.state, [self._simulate_line(trace, start, index, notes.get(trace.id))
                                   for index, trace in enumerate(traces)]

    def _simulate_webhooks(self, participant, clock):
        """ The webhook calls the run queued are not made: each counts as answered, unless its URL would be refused
        without even asking the DNS (then it fails as it would). Returns {trace id: what would be called}. """
        Delivery = self.env['mautomate.webhook.delivery']
        notes = {}
        for delivery in Delivery.search([('trace_id.participant_id', '=', participant.id), ('state', '=', 'pending')]):
            try:
                target = outgoing.Target(delivery.step_id.webhook_url, Delivery._allowed_hosts())
            except outgoing.OutgoingRefused as refusal:
                delivery.state = 'failed'
                delivery._record_result(UserError(Delivery._refusal_message(refusal)), clock)
                continue
            delivery.state = 'cancelled'
            delivery._record_result(now=clock)
            notes[delivery.trace_id.id] = self.env._("Would POST to %s (not called in a test)", target.host)
        return notes

    def _simulate_line(self, trace, start, index, note=None):
        mail = trace.mail_mail_id
        at = trace.done_at or trace.scheduled_at
        return {
            'note': note,
            'sequence': index,
            'step_id': trace.step_id.id,
            'at': at,
            'after': self._format_offset(at - start),
            'state': trace.state,
            'outcome': trace.outcome if trace.step_id.kind in ('condition', 'wait') else False,
            'skip_reason': trace.skip_reason,
            'deferred_count': trace.deferred_count,
            'defer_reason': trace.defer_reason,
            'error_message': trace.error_message,
            'email_to': mail and (mail.email_to or ', '.join(mail.recipient_ids.mapped('email_formatted'))),
            'subject': mail.subject if mail else None,
            'body_html': mail.body_html if mail else False,
        }

    def _format_offset(self, offset):
        """ "3 d 2 h 5 min" after the contact's entry. """
        minutes = int(offset.total_seconds() // 60)
        days, minutes = divmod(minutes, 24 * 60)
        hours, minutes = divmod(minutes, 60)
        parts = [self.env._("%s d", days) if days else '', self.env._("%s h", hours) if hours else '',
                 self.env._("%s min", minutes) if minutes else '']
        return ' '.join(part for part in parts if part) or self.env._("at once")
