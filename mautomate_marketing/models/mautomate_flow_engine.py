import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

import pytz
from psycopg2.errors import SerializationFailure

from odoo import api, fields, models, modules, tools
from odoo.tools import SQL

from ..tools.domains import parse_domain

_logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# The progress reported to the cron counts due traces up to this many.
MAX_REMAINING = 100000
MAX_ATTEMPTS = 3
# Wait before the next attempt of a failed step, by attempts made so far.
RETRY_DELAYS = {1: timedelta(minutes=5), 2: timedelta(minutes=30)}
# Steps whose children follow only the branch of the step's outcome.
BRANCHING_KINDS = ('condition', 'wait', 'split')
# Steps that send automated mail: they count in the frequency cap.
MAIL_KINDS = ('email',)
# Steps that send messages: they wait for the end of quiet hours.
QUIET_KINDS = ('email', 'sms')
# Steps that act on the participant's contact: skipped for a lead without contact.
CONTACT_KINDS = ('sms', 'tags', 'update', 'server_action', 'lead')
# The frequency cap counts a contact's automated mails over this window.
CAP_WINDOW = timedelta(days=7)
QUIET_START, QUIET_END = 21, 8


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
            SELECT p.id, s.id, s.flow_id, 'scheduled', %(due)s, 'entry', 0,
                   %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM unnest(%(participants)s::int4[]) AS p(id)
              JOIN mautomate_flow_participant fp ON fp.id = p.id
              LEFT JOIN res_partner rp ON rp.id = fp.partner_id
             CROSS JOIN mautomate_flow_step s
             WHERE s.flow_id = %(flow)s
               AND NOT EXISTS (SELECT 1 FROM mautomate_flow_step_parent_rel r WHERE r.step_id = s.id)
                ON CONFLICT (participant_id, step_id) DO NOTHING
         RETURNING scheduled_at
        """, due=self._due_at_sql(SQL('%s + %s', now, delay_sql(SQL('s.delay'), SQL('s.delay_unit'))), 's', 'rp'),
            uid=self.env.uid, participants=list(participant_ids), flow=flow.id))
        self._wake_at({row[0] for row in self.env.cr.fetchall()}, now)

    @api.model
    def _due_at_sql(self, after, step, partner):
        """ SQL of when step `step` (a table alias) runs for contact `partner` (an alias) once `after` (a UTC
        timestamp) has come: then, or for a step at a time of day, at the first such time from then in the
        contact's time zone (else the company's, else UTC). A zone PostgreSQL does not know counts as unknown. """
        step, partner = SQL.identifier(step), SQL.identifier(partner)
        known = self._get_known_time_zones()
        company_zone = self.env.company.partner_id.tz
        zone = SQL("COALESCE(CASE WHEN %(partner)s.tz = ANY(%(known)s::varchar[]) THEN %(partner)s.tz END, %(company)s)",
                   partner=partner, known=list(known), company=company_zone if company_zone in known else 'UTC')
        hour = SQL("make_interval(mins => round(%s.run_time * 60)::int4)", step)
        local = SQL("((%s) AT TIME ZONE 'UTC' AT TIME ZONE %s)", after, zone)
        # The first local time at `hour` not before `local`, back in UTC.
        return SQL("""CASE WHEN %(step)s.run_at_time
                           THEN (date_trunc('day', %(local)s - %(hour)s - interval '1 microsecond') + interval '1 day'
                                 + %(hour)s) AT TIME ZONE %(zone)s AT TIME ZONE 'UTC'
                           ELSE %(after)s END""", step=step, local=local, hour=hour, zone=zone, after=after)

    @api.model
    @tools.ormcache()
    def _get_known_time_zones(self):
        """ The time zones PostgreSQL knows (reading them takes it a while: cached). """
        self.env.cr.execute("SELECT name FROM pg_timezone_names")
        return frozenset(row[0] for row in self.env.cr.fetchall())

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
        # Both on the due index, bounded: a full count would cost each batch time in proportion to the backlog.
        self.env.cr.execute(SQL("""
            SELECT count(*) FROM (SELECT 1 FROM mautomate_flow_trace t
                                   WHERE t.state IN ('scheduled', 'waiting') AND t.scheduled_at <= %s
                                     AND t.flow_id = ANY(ARRAY(SELECT id FROM mautomate_flow WHERE state = 'running'))
                                   LIMIT %s) due
        """, now, MAX_REMAINING))
        remaining = self.env.cr.fetchone()[0]
        if not remaining:
            self.env.cr.execute(SQL("""
                SELECT t.scheduled_at FROM mautomate_flow_trace t
                 WHERE t.state IN ('scheduled', 'waiting') AND t.scheduled_at > %s
                   AND t.flow_id = ANY(ARRAY(SELECT id FROM mautomate_flow WHERE state = 'running'))
              ORDER BY t.scheduled_at LIMIT 1
            """, now))
            if row := self.env.cr.fetchone():
                self._wake(row[0])
        self.env['ir.cron']._notify_progress(done=done, remaining=remaining)
        return done

    @api.model
    def _process_batch(self, now, batch_size=BATCH_SIZE):
        """ Take up to `batch_size` due traces of running flows, locked, and run them. Returns how many. """
        # Steps read contacts, consent and events in SQL: everything written before must be there.
        self.env.flush_all()
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(SQL("""
                    SELECT t.id FROM mautomate_flow_trace t
                     WHERE t.state IN ('scheduled', 'waiting') AND t.scheduled_at <= %s
                       AND t.flow_id = ANY(ARRAY(SELECT id FROM mautomate_flow WHERE state = 'running'))
                       AND EXISTS (SELECT 1 FROM mautomate_flow_participant p WHERE p.id = t.participant_id
                                                                                AND p.state = 'running')
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
        if trace_ids:
            self._process_traces(trace_ids, now)
        return len(trace_ids)

    @api.model
    def _process_traces(self, trace_ids, now):
        """ Run these due traces at `now` (the caller holds them): goals first, then the e-mails that must wait
        are deferred, then each step set-based; the next steps are scheduled in the same transaction. """
        # Traces and participants change in SQL: read them afresh.
        self.env['mautomate.flow.trace'].invalidate_model()
        self.env['mautomate.flow.participant'].invalidate_model()
        Trace = self.env['mautomate.flow.trace'].sudo()
        traces = Trace.browse(trace_ids)
        traces = traces - self._check_goals(traces)
        traces = traces - self._defer_mails(traces, now)
        contactless = traces.filtered(lambda trace: not trace.participant_id.partner_id and trace.step_id.kind in CONTACT_KINDS)
        results, failures = dict.fromkeys(contactless.ids, ('skipped', 'always', 'no_contact')), {}
        by_step = defaultdict(lambda: Trace)
        for trace in traces - contactless:
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
        self._complete_participants(Trace.browse(trace_ids).participant_id.ids)
        Trace.invalidate_model()
        self.env['mautomate.flow.participant'].invalidate_model()

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

    # ------------------------------------------------------------
    # Sending policy: quiet hours and the frequency cap
    # ------------------------------------------------------------

    @api.model
    def _get_sending_policy(self):
        """ The settings' limits on automated mail: (cap per contact per CAP_WINDOW or 0, quiet hours as (start,
        end) local hours or None). """
        params = self.env['ir.config_parameter'].sudo()
        try:
            cap = max(int(params.get_param('mautomate_marketing.flow_mail_cap') or 0), 0)
            quiet = None
            if params.get_param('mautomate_marketing.quiet_hours'):
                quiet = (float(params.get_param('mautomate_marketing.quiet_hours_start') or QUIET_START) % 24,
                         float(params.get_param('mautomate_marketing.quiet_hours_end') or QUIET_END) % 24)
        except ValueError:
            _logger.warning("Flow engine: the frequency cap or quiet hours settings are not numbers: ignored")
            return 0, None
        return cap, (quiet if quiet and quiet[0] != quiet[1] else None)

    @api.model
    def _defer_mails(self, traces, now):
        """ Double opt-in: a flow's e-mail to an address waiting for its confirmation is held (deferred to the end of
        the confirmation period, released at once by the confirmation); unconfirmed by then, the step is skipped
        (reason "unconfirmed") and the flow goes on. The others wait for the sending policy. Returns the traces held
        or deferred. """
        mails = traces.filtered(lambda trace: trace.step_id.kind in MAIL_KINDS)
        emails = {trace.id: trace._mautomate_email() for trace in mails}
        waiting = self.env['mautomate.consent']._unconfirmed_emails({email for email in emails.values() if email})
        deferrals = {trace_id: (waiting[email], 'unconfirmed') for trace_id, email in emails.items()
                     if email in waiting and waiting[email] > now}
        self._save_deferrals(deferrals)
        # Held past the confirmation period: the address was never confirmed, the step is skipped.
        expired = [trace_id for trace_id, email in emails.items() if email in waiting and waiting[email] <= now]
        if expired:
            self._save_results(dict.fromkeys(expired, ('skipped', 'always', 'unconfirmed')), now)
            self._schedule_children(expired, now)
        held = traces.browse(list(deferrals) + expired)
        return held | self._defer_mails_by_policy(traces - held, now)

    @api.model
    def _release_held_mails(self, emails):
        """ The flow e-mails held for these now confirmed addresses are due at once. """
        self.env['mautomate.flow.trace'].flush_model()
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_trace t
               SET scheduled_at = %s, write_date = now() at time zone 'UTC'
              FROM mautomate_flow_participant p
              LEFT JOIN res_partner rp ON rp.id = p.partner_id
              LEFT JOIN crm_lead l ON l.id = p.lead_id
              JOIN mautomate_flow f ON f.id = p.flow_id
             WHERE t.participant_id = p.id AND t.state = 'scheduled' AND t.defer_reason = 'unconfirmed'
               AND (CASE WHEN f.target = 'lead' THEN l.email_normalized ELSE rp.email_normalized END) = ANY(%s)
        """, fields.Datetime.now(), list(emails)))
        if self.env.cr.rowcount:
            self.env['mautomate.flow.trace'].invalidate_model(['scheduled_at'])
            self._wake()


    @api.model
    def _defer_mails_by_policy(self, traces, now):
        """ E-mail and SMS steps due in the contact's quiet hours wait for their end; e-mails over the frequency cap wait
        until the cap frees. They are rescheduled, never dropped. Returns the deferred traces. """
        cap, quiet = self._get_sending_policy()
        mails = traces.filtered(lambda trace: trace.step_id.kind in QUIET_KINDS)
        if not mails or not (cap or quiet):
            return traces.browse()
        deferrals = {}
        if quiet:
            ends = {}
            default_tz = self.env.company.partner_id.tz or 'UTC'
            for trace in mails:
                tz = trace.participant_id.partner_id.tz or default_tz
                if tz not in ends:
                    ends[tz] = self._quiet_hours_end(now, tz, *quiet)
                if ends[tz]:
                    deferrals[trace.id] = (ends[tz], 'quiet_hours')
        if cap:
            capped = mails.filtered(lambda trace: trace.id not in deferrals and trace.step_id.kind in MAIL_KINDS)
            sent = self._recent_mails(capped.participant_id.partner_id.ids, now, cap)
            for trace in capped.sorted(lambda trace: (trace.scheduled_at, trace.id)):
                dates = sent.setdefault(trace.participant_id.partner_id.id, [])
                if len(dates) < cap:
                    dates.insert(0, now)  # goes now: counts for the contact's next mails of this batch
                else:
                    # The cap frees when the cap-th latest mail leaves the window.
                    deferrals[trace.id] = (dates[cap - 1] + CAP_WINDOW, 'frequency_cap')
        self._save_deferrals(deferrals)
        return traces.browse(list(deferrals))

    @api.model
    def _quiet_hours_end(self, now, tz_name, start, end):
        """ The end (naive UTC) of the quiet period `now` falls in, in time zone `tz_name`; None outside. Hours
        are local and may wrap midnight (21 to 8). """
        try:
            tz = pytz.timezone(tz_name)
        except pytz.UnknownTimeZoneError:
            tz = pytz.utc
        local = pytz.utc.localize(now).astimezone(tz)
        hour = local.hour + local.minute / 60 + local.second / 3600
        if start < end:
            quiet, days = start <= hour < end, 0
        else:
            quiet, days = hour >= start or hour < end, int(hour >= start)
        if not quiet:
            return None
        minutes = round(end * 60)
        local_end = datetime.combine(local.date() + timedelta(days=days), time(minutes // 60, minutes % 60))
        return tz.localize(local_end).astimezone(pytz.utc).replace(tzinfo=None)

    @api.model
    def _recent_mails(self, partner_ids, now, cap):
        """ {contact id: dates of its latest `cap` automated mails within CAP_WINDOW, latest first}, over all
        flows, in one query. """
        if not partner_ids:
            return {}
        self.env['mautomate.flow.trace'].flush_model(['state', 'done_at'])
        self.env.cr.execute(SQL("""
            SELECT p.partner_id, (array_agg(t.done_at ORDER BY t.done_at DESC))[1:%(cap)s]
              FROM mautomate_flow_participant p
              JOIN mautomate_flow_trace t ON t.participant_id = p.id
              JOIN mautomate_flow_step s ON s.id = t.step_id
             WHERE p.partner_id = ANY(%(partners)s) AND s.kind IN %(kinds)s AND t.state = 'done'
               AND t.done_at > %(since)s AND t.done_at <= %(now)s
          GROUP BY p.partner_id
        """, cap=cap, partners=partner_ids, kinds=MAIL_KINDS, since=now - CAP_WINDOW, now=now))
        return dict(self.env.cr.fetchall())

    @api.model
    def _save_deferrals(self, deferrals):
        """ Deferred traces stay scheduled, at their new date; the trace counts its deferrals and keeps why. """
        if not deferrals:
            return
        ids = list(deferrals)
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_trace t
               SET scheduled_at = r.scheduled_at, deferred_count = COALESCE(t.deferred_count, 0) + 1,
                   defer_reason = r.reason, write_uid = %(uid)s, write_date = now() at time zone 'UTC'
              FROM unnest(%(ids)s::int4[], %(dates)s::timestamp[], %(reasons)s::varchar[]) AS r(id, scheduled_at, reason)
             WHERE t.id = r.id
        """, uid=self.env.uid, ids=ids, dates=[deferrals[i][0] for i in ids], reasons=[deferrals[i][1] for i in ids]))
        self._wake(min(date for date, _reason in deferrals.values()))

    @api.model
    def _run_step(self, step, traces, now):
        """ Run one step for these traces, in a savepoint; if it fails, run them one by one so that only the
        failing ones are retried. Returns ({trace id: (state, outcome, skip reason)}, {trace id: error}). """
        try:
            with self.env.cr.savepoint():
                return self._split_failures(step._flow_execute(traces, now))
        except Exception as error:  # any error of a step is stored on its traces
            self.env.invalidate_all()
            if len(traces) == 1:
                _logger.info("Flow step %s failed for trace %s", step.id, traces.id, exc_info=True)
                return {}, {traces.id: error}
        results, failures = {}, {}
        for trace in traces:
            try:
                with self.env.cr.savepoint():
                    trace_results, trace_failures = self._split_failures(step._flow_execute(trace, now))
                results.update(trace_results)
                failures.update(trace_failures)
            except Exception as error:  # any error of a step is stored on its trace
                self.env.invalidate_all()
                _logger.info("Flow step %s failed for trace %s", step.id, trace.id, exc_info=True)
                failures[trace.id] = error
        return results, failures

    @api.model
    def _split_failures(self, results):
        """ A step may fail some traces and not others (e.g. a webhook call each): an exception as a trace's
        result is its failure. Returns (results, failures). """
        failures = {trace_id: result for trace_id, result in results.items() if isinstance(result, Exception)}
        return {trace_id: result for trace_id, result in results.items() if trace_id not in failures}, failures

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
            SELECT t.participant_id, c.id, c.flow_id, 'scheduled', %(due)s,
                   CASE WHEN s.kind IN %(branching)s THEN t.outcome ELSE 'always' END, 0,
                   %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
              FROM mautomate_flow_trace t
              JOIN mautomate_flow_step s ON s.id = t.step_id
              JOIN mautomate_flow_step_parent_rel r ON r.parent_id = s.id
              JOIN mautomate_flow_step c ON c.id = r.step_id
              JOIN mautomate_flow_participant p ON p.id = t.participant_id
              LEFT JOIN res_partner rp ON rp.id = p.partner_id
             WHERE t.id = ANY(%(ids)s) AND t.state IN ('done', 'skipped') AND p.state = 'running'
               AND (s.kind NOT IN %(branching)s OR c.branch = 'always' OR c.branch = t.outcome)
          ORDER BY t.id, c.sequence, c.id
                ON CONFLICT (participant_id, step_id) DO NOTHING
         RETURNING scheduled_at
        """, due=self._due_at_sql(SQL('%s + %s', now, delay_sql(SQL('c.delay'), SQL('c.delay_unit'))), 'c', 'rp'),
            branching=BRANCHING_KINDS,
            uid=self.env.uid, ids=trace_ids))
        self._wake_at({row[0] for row in self.env.cr.fetchall()}, now)

    @api.model
    def _complete_participants(self, participant_ids):
        self.env.cr.execute(SQL("""
            UPDATE mautomate_flow_participant p SET state = 'completed', write_date = now() at time zone 'UTC'
             WHERE p.id = ANY(%s) AND p.state = 'running'
               AND NOT EXISTS (SELECT 1 FROM mautomate_flow_trace t
                                WHERE t.participant_id = p.id AND t.state IN ('scheduled', 'waiting', 'processing'))
        """, participant_ids))
