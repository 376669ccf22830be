import time
from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import outgoing

ALLOWED_HOSTS_PARAM = 'mautomate_marketing.outgoing_allowed_hosts'
# Calls of one cron run at most, and the time after which it takes no new one: the cron runs again while some wait.
SEND_BATCH = 50
SEND_BUDGET = 60
# Calls made are kept this long (their status code), for a look at a receiver's failures.
KEEP_DAYS = 30


class MautomateWebhookDelivery(models.Model):
    """ One call of a webhook step for one trace: the outbox the engine fills in its batch and the sender cron
    empties one call at a time, committing each result, so that a stopped run repeats at most the call in hand. """
    _name = 'mautomate.webhook.delivery'
    _description = 'Webhook Delivery'
    _order = 'id DESC'
    _rec_name = 'step_id'

    trace_id = fields.Many2one('mautomate.flow.trace', required=True, ondelete='cascade', index=True, readonly=True)
    step_id = fields.Many2one('mautomate.flow.step', required=True, ondelete='cascade', index=True, readonly=True)
    # The payload as it was when the step ran; emptied once the call is made (it holds the contact's details).
    body = fields.Text(readonly=True, groups='base.group_system')
    state = fields.Selection([('pending', 'Pending'), ('sent', 'Delivered'), ('failed', 'Failed'),
                              ('cancelled', 'Cancelled')], required=True, default='pending', readonly=True)
    status_code = fields.Integer(readonly=True, help="The receiver's answer (its body is never kept).")
    sent_at = fields.Datetime('Called', readonly=True)

    def init(self):
        # The sender takes pending calls in order.
        tools.create_index(self.env.cr, 'mautomate_webhook_delivery_pending_idx', self._table, ['id'],
                           where="state = 'pending'")

    @api.autovacuum
    def _gc_deliveries(self):
        self.search([('state', '!=', 'pending'), ('create_date', '<', fields.Datetime.now() - timedelta(days=KEEP_DAYS))]).unlink()

    @api.model
    def _allowed_hosts(self):
        return outgoing.parse_allowed_hosts(self.env['ir.config_parameter'].sudo().get_param(ALLOWED_HOSTS_PARAM))

    @api.model
    def _refusal_message(self, error):
        """ A refused URL or a failed call, in words: the host and why, never the peer's answer. """
        reasons = {
            outgoing.INVALID: self.env._("not a valid URL"),
            outgoing.SCHEME: self.env._("only http:// and https:// are allowed"),
            outgoing.PORT: self.env._("only ports 80 and 443 are allowed (other ports: an administrator lists the host in "
                                      "the Settings' allowed hosts)"),
            outgoing.INTERNAL: self.env._("internal address"),
            outgoing.UNRESOLVED: self.env._("the host name does not resolve"),
            outgoing.TIMEOUT: self.env._("no answer in time"),
            outgoing.UNREACHABLE: self.env._("the connection failed"),
        }
        if isinstance(error, outgoing.OutgoingRefused):
            return self.env._("The address %(host)s is not allowed: %(reason)s.",
                              host=error.host or '?', reason=reasons[error.reason])
        return self.env._("The webhook at %(host)s could not be called: %(reason)s.", host=error.host, reason=reasons[error.reason])

    @api.model
    def _wake(self, at=None):
        self.env.ref('mautomate_marketing.ir_cron_mautomate_webhook_delivery').sudo()._trigger(at)

    @api.model
    def _cron_send(self, batch_size=SEND_BATCH, budget=SEND_BUDGET):
        """ Make pending calls one at a time, each taken with SKIP LOCKED (parallel runs share them) and its
        result committed before the next: a run stopped during a call leaves that one call pending, and only it
        is made again. """
        done, until = 0, time.monotonic() + budget
        while done < batch_size and time.monotonic() < until:
            self.env.cr.execute(SQL("""
                SELECT id FROM mautomate_webhook_delivery WHERE state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
            """))
            row = self.env.cr.fetchone()
            if not row:
                break
            self.browse(row[0]).sudo()._send()
            done += 1
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute("SELECT count(*) FROM mautomate_webhook_delivery WHERE state = 'pending'")
        remaining = self.env.cr.fetchone()[0]
        self.env['ir.cron']._notify_progress(done=done, remaining=remaining)
        return done

    def _send(self):
        """ Make this call (the caller holds its row) and record its result on the delivery and its trace. """
        self.ensure_one()
        trace, step = self.trace_id, self.step_id
        if trace.state != 'processing':
            # The participant left the flow meanwhile: its pending steps are not run.
            self.write({'state': 'cancelled', 'body': False})
            return
        body = self.body.encode()
        headers = {'Content-Type': 'application/json', 'X-Mautomate-Signature': step._webhook_sign(body),
                   'X-Mautomate-Delivery': str(trace.id)}
        status, error = 0, None
        try:
            status = outgoing.post(step.webhook_url, body, headers, step.webhook_timeout, self._allowed_hosts())
        except (outgoing.OutgoingRefused, outgoing.OutgoingFailed) as failure:
            error = UserError(self._refusal_message(failure))
        if status and not 200 <= status < 300:
            error = UserError(self.env._("The webhook answered %(status)s (redirects are not followed).", status=status)
                              if 300 <= status < 400 else self.env._("The webhook answered %s.", status))
        self.write({'state': 'failed' if error else 'sent', 'status_code': status, 'sent_at': fields.Datetime.now(),
                    'body': False})
        self._record_result(error)

    def _record_result(self, error=None, now=None):
        """ The trace follows its call: done, and its next steps scheduled; or tried again later, as any failed step. """
        self.ensure_one()
        engine, trace, now = self.env['mautomate.flow.engine'], self.trace_id, now or fields.Datetime.now()
        trace.invalidate_recordset(['state'])
        if trace.state != 'processing':
            return
        if error:
            engine._save_failures({trace.id: error}, now)
        else:
            engine._save_results({trace.id: ('done', 'always', None)}, now)
            engine._schedule_children(trace.ids, now)
        engine._complete_participants(trace.participant_id.ids)
        trace.invalidate_recordset()
