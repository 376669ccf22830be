import logging
from collections import defaultdict
from datetime import timedelta

from psycopg2.errors import SerializationFailure

from odoo import api, fields, models, modules
from odoo.tools import SQL

from .mautomate_flow import parse_domain

_logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_ATTEMPTS = 3
# Wait before the next attempt of a failed step, by attempts made so far.
RETRY_DELAYS = {1: timedelta(minutes=5), 2: timedelta(minutes=30)}
# Steps whose children follow only the branch of the step's outcome.
BRANCHING_KINDS = ('condition', 'wait')


def delay_sql(number, unit):
    """ SQL interval of a delay given as SQL expressions (a number and a DELAY_UNITS key). """
    return SQL("""(%s * CASE %s WHEN 'minutes' THEN interval '1 minute' WHEN 'hours' THEN interval '1 hour'
                              WHEN 'weeks' THEN interval '1 week' WHEN 'months' THEN interval '1 month'
                              ELSE interval '1 day' END)""", number, unit)


class MautomateFlowEngine(models.AbstractModel):
    """ Runs flows: takes due traces in bounded batches (locked with SKIP LOCKED so that parallel runs share
    the work), runs their steps set-based, marks them done and schedules the next steps in the same
    transaction. A batch is committed whole or not at all: a kill never sends twice nor skips a step. """
    _name = 'mautomate.flow.engine'
    _description = 'Automation Flow Engine'

    @api.model
    def _wake(self, at=None):
        self.env.ref('mautomate_marketing.ir_cron_mautomate_flow_engine').sudo()._trigger(at)

    @api.model
    def _schedule_first_steps(self, flow, participant_ids):
        """ Schedule the first steps (steps without parent) of new participants of `flow`. """
        now = fields.Datetime.now()
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_flow_trace (participant_id, step_id, flow_id, state, scheduled_at, branch, attempts,
                                              create_uid, write_uid, create_date, write_date)
            SELECT p.id, s.id, s.flow_id, 'scheduled', %(now)s + %(delay)s, 'entry', 0,
                   %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM unnest(%(participants)s::int4[]) AS p(id)
             CROSS JOIN mautomate_flow_step s
             WHERE s.flow_id = %(flow)s
               AND NOT EXISTS (SELECT 1 FROM mautomate_flow_step_parent_rel r WHERE r.step_id = s.id)
                ON CONFLICT (participant_id, step_id) DO NOTHING
         RETURNING scheduled_at
        """, now=now, delay=delay_sql(SQL('s.delay'), SQL('s.delay_unit')), uid=self.env.uid,
            participants=list(participant_ids), flow=flow.id))
        self._wake_at({row[0] for row in self.env.cr.fetchall()}, now)

    @api.model
    def _wake_at(self, dates, now):
        if dates:
            self._wake(max(min(dates), now))

    # ------------------------------------------------------------
    # The cron
    # ------------------------------------------------------------

    @api.model
    def _cron_process(self, batch_size=BATCH_SIZE):
        """ One bounded batch per call, committed (outside tests); Odoo's cron calls again while work remains,
        and the engine wakes itself when the next step becomes due. """
        now = fields.Datetime.now()
        done = self._process_batch(now, batch_size)
        if not modules.module.current_test:
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute(SQL("""
            SELECT count(*) FILTER (WHERE t.scheduled_at <= %s), min(t.scheduled_at) FILTER (WHERE t.scheduled_at > %s)
              FROM mautomate_flow_trace t
              JOIN mautomate_flow f ON f.id = t.flow_id
             WHERE t.state IN ('scheduled', 'waiting') AND f.state = 'running'
        """, now, now))
        remaining, next_due = self.env.cr.fetchone()
        if next_due and not remaining:
            self._wake(next_due)
        self.env['ir.cron']._notify_progress(done=done, remaining=remaining)
        return done

    @api.model
    def _process_batch(self, now, batch_size=BATCH_SIZE):
        """ Take up to `batch_size` due traces of running flows, locked, and run them. Returns how many. """
        for model in ('mautomate.flow.trace', 'mautomate.flow.participant', 'mautomate.flow', 'mautomate.flow.step'):
            self.env[model].flush_model()
        # Traces and participants change in SQL: read them afresh.
        self.env['mautomate.flow.trace'].invalidate_model()
        self.env['mautomate.flow.participant'].invalidate_model()
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(SQL("""
                    SELECT t.id FROM mautomate_flow_trace t
                      JOIN mautomate_flow_participant p ON p.id = t.participant_id
                      JOIN mautomate_flow f ON f.id = p.flow_id
                     WHERE t.state IN ('scheduled', 'waiting') AND t.scheduled_at <= %s AND p.state = 'running'
                       AND f.state = 'running'
                  ORDER BY t.scheduled_at, t.id
                     LIMIT %s
                       FOR UPDATE OF t SKIP LOCKED
                """, now, batch_size), log_exceptions=False)
                trace_ids = [row[0] for row in self.env.cr.fetchall()]
        except SerializationFailure:
            # Another run committed these traces since this transaction began: the next run takes what is left.
            _logger.info("Flow engine: due traces were taken by a parallel run; running again")
            self._wake()
            return 0
        if not trace_ids:
            return 0
        Trace = self.env['mautomate.flow.trace'].sudo()
        traces = Trace.browse(trace_ids)
        traces = traces - self._check_goals(traces)
        results, failures = {}, {}
        by_step = defaultdict(lambda: Trace)
        for trace in traces:
            by_step[trace.step_id] |= trace
        for step, step_traces in by_step.items():
            step_results, step_failures = self._run_step(step, step_traces, now)
            results.update(step_results)
            failures.update(step_failures)
        self._save_results(results, now)
        self._save_failures(failures, now)
        self._schedule_children(list(results), now)
        exits = traces.filtered(lambda trace: trace.id in results and trace.step_id.kind == 'exit')
        exits.participant_id._finish('exited', 'exited')
        self._complete_participants(traces.participant_id.ids)
        Trace.invalidate_model()
        self.env['mautomate.flow.participant'].invalidate_model()
        return len(trace_ids)

    @api.model
    def _check_goals(self, traces):
        """ Participants whose contact (or lead) reached their flow's goal leave it as converted. Returns their traces. """
        reached = self.env['mautomate.flow.trace']
        for flow in traces.flow_id.filtered('goal_domain'):
            flow_traces = traces.filtered(lambda trace, flow=flow: trace.flow_id == flow)
            try:
                domain = parse_domain(flow.goal_domain)
            except (ValueError, SyntaxError):
                _logger.warning("Flow %s has an invalid goal domain: ignored", flow.id)
                continue
            participants = flow._filter_participants(flow_traces.participant_id, domain)
            converted = flow_traces.filtered(lambda trace, participants=participants: trace.participant_id in participants)
            converted.participant_id._finish('converted', 'goal')
            reached |= converted
        return reached

    @api.model
    def _run_step(self, step, traces, now):
        """ Run one step for these traces, in a savepoint; if it fails, run them one by one so that only the
        failing ones are retried. Returns ({trace id: (state, outcome, skip reason)}, {trace id: error}). """
        try:
            with self.env.cr.savepoint():
                return step._flow_execute(traces, now), {}
        except Exception as error:  # any error of a step is stored on its traces
            self.env.invalidate_all()
            if len(traces) == 1:
                _logger.info("Flow step %s failed for trace %s", step.id, traces.id, exc_info=True)
                return {}, {traces.id: error}
        results, failures = {}, {}
        for trace in traces:
            try:
                with self.env.cr.savepoint():
                    results.update(step._flow_execute(trace, now))
            except Exception as error:  # any error of a step is stored on its trace
                self.env.invalidate_all()
                _logger.info("Flow step %s failed for trace %s", step.id, trace.id, exc_info=True)
                failures[trace.id] = error
        return results, failures

    @api.model
    def _save_results(self, results, now):
        if not results:
            return
        self.env['mautomate.flow.trace'].flush_model()
        ids = list(results)
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_trace t
               SET state = r.state, outcome = r.outcome, skip_reason = r.reason,
                   scheduled_at = COALESCE(r.scheduled_at, t.scheduled_at), started_at = COALESCE(t.started_at, %(now)s),
                   done_at = CASE WHEN r.state IN ('done', 'skipped') THEN %(now)s END,
                   error_message = NULL, write_uid = %(uid)s, write_date = now() at time zone 'UTC'
              FROM unnest(%(ids)s::int4[], %(states)s::varchar[], %(outcomes)s::varchar[], %(reasons)s::varchar[],
                          %(dates)s::timestamp[]) AS r(id, state, outcome, reason, scheduled_at)
             WHERE t.id = r.id
        """, now=now, uid=self.env.uid, ids=ids, states=[results[i][0] for i in ids],
            outcomes=[results[i][1] for i in ids], reasons=[results[i][2] for i in ids],
            dates=[results[i][3] if len(results[i]) > 3 else None for i in ids]))

    @api.model
    def _save_failures(self, failures, now):
        """ A failed step is tried again later (after 5, then 30 minutes), at most MAX_ATTEMPTS times. """
        if not failures:
            return
        traces = self.env['mautomate.flow.trace'].sudo().browse(list(failures))
        for trace in traces:
            attempts = trace.attempts + 1
            error = failures[trace.id]
            trace.write({
                'attempts': attempts,
                'state': 'error' if attempts >= MAX_ATTEMPTS else 'scheduled',
                'scheduled_at': now + RETRY_DELAYS.get(attempts, timedelta()),
                'error_message': f"{type(error).__name__}: {error}",
            })
        traces.flush_recordset()
        if retry := [trace.scheduled_at for trace in traces if trace.state == 'scheduled']:
            self._wake(min(retry))

    @api.model
    def _schedule_children(self, trace_ids, now):
        """ Schedule the next steps of finished traces: after a condition or a wait, only those on the branch of
        its outcome. A step reached again (paths merge) is not scheduled twice. """
        if not trace_ids:
            return
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_flow_trace (participant_id, step_id, flow_id, state, scheduled_at, branch, attempts,
                                              create_uid, write_uid, create_date, write_date)
            SELECT t.participant_id, c.id, c.flow_id, 'scheduled', %(now)s + %(delay)s,
                   CASE WHEN s.kind IN %(branching)s THEN t.outcome ELSE 'always' END, 0,
                   %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM mautomate_flow_trace t
              JOIN mautomate_flow_step s ON s.id = t.step_id
              JOIN mautomate_flow_step_parent_rel r ON r.parent_id = s.id
              JOIN mautomate_flow_step c ON c.id = r.step_id
              JOIN mautomate_flow_participant p ON p.id = t.participant_id
             WHERE t.id = ANY(%(ids)s) AND t.state IN ('done', 'skipped') AND p.state = 'running'
               AND (s.kind NOT IN %(branching)s OR c.branch = 'always' OR c.branch = t.outcome)
          ORDER BY t.id, c.sequence, c.id
                ON CONFLICT (participant_id, step_id) DO NOTHING
         RETURNING scheduled_at
        """, now=now, delay=delay_sql(SQL('c.delay'), SQL('c.delay_unit')), branching=BRANCHING_KINDS,
            uid=self.env.uid, ids=trace_ids))
        self._wake_at({row[0] for row in self.env.cr.fetchall()}, now)

    @api.model
    def _complete_participants(self, participant_ids):
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_participant p SET state = 'completed', write_date = now() at time zone 'UTC'
             WHERE p.id = ANY(%s) AND p.state = 'running'
               AND NOT EXISTS (SELECT 1 FROM mautomate_flow_trace t
                                WHERE t.participant_id = p.id AND t.state IN ('scheduled', 'waiting'))
        """, participant_ids))
