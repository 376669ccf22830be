import logging
from collections import defaultdict
from datetime import timedelta

from psycopg2 import OperationalError

from odoo import api, fields, models, modules
from odoo.exceptions import AccessError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

from ..tools.domains import parse_domain

_logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
# The record cron looks this far before its last check: a transaction that wrote a record before the last
# check but committed after it is still seen (the occurrences table keeps a record from enrolling twice).
RECORD_OVERLAP = timedelta(minutes=15)
# A daily cron that did not run for a while catches up on this many days of dates at most.
MAX_CATCH_UP_DAYS = 31
# Columns the scoring engine updates in SQL: their triggers are checked after each scoring batch.
SCORING_COLUMNS = frozenset({'mautomate_score', 'mautomate_fit_score', 'mautomate_grade', 'mautomate_stage'})


class MautomateFlowTriggerScan(models.AbstractModel):
    """ Evaluates the triggers that are not events, set-based: changes of contacts and leads (field changed,
    score and grade reached) as they happen; dates, inactivity and records of other models by cron. """
    _name = 'mautomate.flow.trigger.scan'
    _description = 'Automation Flow Trigger Evaluation'

    # ------------------------------------------------------------
    # Changes: field changed, score and grade reached
    # ------------------------------------------------------------

    @api.model
    def _snapshot(self, model, ids, names):
        """ {id: {field: value}} of the fields among `names` that triggers of running flows watch on these
        records of `model`, before a change; None when none is watched (the common case: no query). """
        watched = self.env['mautomate.flow.trigger']._get_watched_fields().get(model, frozenset()) & set(names)
        if not watched or not ids:
            return None
        return (model, ids, watched, self._read_values(model, ids, watched))

    @api.model
    def _read_values(self, model, ids, names):
        """ The columns themselves (a many2one: its id), as stored. """
        names = sorted(names)
        self.env[model].flush_model(names)
        self.env.cr.execute(SQL("SELECT id, %s FROM %s WHERE id = ANY(%s)",
                                SQL(', ').join(SQL.identifier(name) for name in names),
                                SQL.identifier(self.env[model]._table), list(ids)))
        return {row[0]: dict(zip(names, row[1:], strict=True)) for row in self.env.cr.fetchall()}

    @api.model
    def _enroll_changes(self, snapshot):
        """ After the change: enrol the records whose watched values now fire a trigger of a running flow. An
        error is logged, never raised: the change itself stays. """
        if not snapshot:
            return
        model, ids, names, before = snapshot
        try:
            with self.env.cr.savepoint(flush=False):
                self._enroll_changes_now(model, ids, names, before)
        except OperationalError as error:
            if isinstance(error, PG_CONCURRENCY_EXCEPTIONS_TO_RETRY):
                raise
            _logger.exception("Could not enrol the %s %s changed in flows", model, ids[:10])
        except Exception:
            _logger.exception("Could not enrol the %s %s changed in flows", model, ids[:10])

    @api.model
    def _enroll_changes_now(self, model, ids, names, before):
        after = self._read_values(model, ids, names)
        triggers = self.env['mautomate.flow.trigger'].sudo().search([
            ('flow_id.state', '=', 'running'), ('trigger_type', 'in', ('field', 'score', 'grade'))])
        by_flow = defaultdict(set)
        for trigger in triggers.filtered(lambda trigger: trigger.target_model == model):
            fired = [record_id for record_id, old in before.items()
                     if record_id in after and trigger._fires_on_change(old, after[record_id])]
            if fired and trigger.trigger_type == 'field' and parse_domain(trigger.filter_domain):
                fired = trigger.flow_id._domain_search(model, [('id', 'in', fired), *parse_domain(trigger.filter_domain)])
            by_flow[trigger.flow_id].update(fired)
        for flow, record_ids in by_flow.items():
            if record_ids:
                flow._enroll_targets(sorted(record_ids))

    @api.model
    def _score_snapshot(self, partner_ids, lead_ids):
        """ Before the scoring updates these contacts and leads (and the leads of these contacts): the values
        score, grade and field triggers watch. None when no running flow watches them. """
        watched = self.env['mautomate.flow.trigger']._get_watched_fields()
        partner_names = watched.get('res.partner', frozenset()) & SCORING_COLUMNS
        lead_names = watched.get('crm.lead', frozenset()) & SCORING_COLUMNS
        snapshots = []
        if partner_names and partner_ids:
            snapshots.append(self._snapshot('res.partner', list(partner_ids), partner_names))
        if lead_names and (partner_ids or lead_ids):
            self.env.cr.execute(SQL("""
                SELECT id FROM crm_lead WHERE partner_id = ANY(%(ids)s)
                 UNION
                SELECT l.id FROM crm_lead l JOIN res_partner p ON p.email_normalized = l.email_normalized
                 WHERE p.id = ANY(%(ids)s)
            """, ids=list(partner_ids)))
            all_lead_ids = set(lead_ids) | {row[0] for row in self.env.cr.fetchall()}
            snapshots.append(self._snapshot('crm.lead', sorted(all_lead_ids), lead_names))
        return [snapshot for snapshot in snapshots if snapshot] or None

    @api.model
    def _enroll_score_changes(self, snapshots):
        for snapshot in snapshots or ():
            self._enroll_changes(snapshot)

    # ------------------------------------------------------------
    # Crons: dates and inactivity daily, records of other models every few minutes
    # ------------------------------------------------------------

    @api.model
    def _scanned_triggers(self, trigger_types, now):
        """ The running flows' triggers of these types. The others' last check is cleared: a flow started or
        resumed takes no one for the time it was not running (its first run looks at today, or takes a new
        baseline of matching records). """
        Trigger = self.env['mautomate.flow.trigger'].sudo()
        Trigger.search([('trigger_type', 'in', trigger_types), ('flow_id.state', '!=', 'running'),
                        ('last_check', '!=', False)]).write({'last_check': False})
        return Trigger.search([('trigger_type', 'in', trigger_types), ('flow_id.state', '=', 'running'),
                               ('flow_id.active', '=', True)])

    @api.model
    def _cron_daily(self, batch_size=BATCH_SIZE):
        """ Dates reached and inactivity, for each day since the last run: each trigger in committed batches
        (outside tests) of occurrences enrolled. """
        now = fields.Datetime.now()
        done = 0
        for trigger in self._scanned_triggers(('date', 'inactivity'), now):
            scan = self._scan_date if trigger.trigger_type == 'date' else self._scan_inactivity
            done += self._enroll_batches(trigger, lambda trigger=trigger, scan=scan: scan(trigger, now, batch_size),
                                         batch_size)
            trigger.last_check = now
            self._commit()
        self.env['ir.cron']._notify_progress(done=done, remaining=0)
        return done

    @api.model
    def _cron_records(self, batch_size=BATCH_SIZE):
        """ Records of other models that started matching their trigger's domain since the last check. """
        now = fields.Datetime.now()
        done = 0
        for trigger in self._scanned_triggers(('record',), now):
            try:
                self._record_query(trigger)
            except (ValueError, SyntaxError, KeyError, AccessError) as error:
                # A domain or model that no longer fits (a module or field removed, rights lost): the others still run.
                _logger.warning("Flow trigger %s: its records cannot be searched (%s); skipped", trigger.id, error)
                continue
            if not trigger.last_check:
                self._record_baseline(trigger)
            else:
                done += self._enroll_batches(
                    trigger, lambda trigger=trigger: self._scan_records(trigger, now, batch_size), batch_size)
            trigger.last_check = now
            self._commit()
        self.env['ir.cron']._notify_progress(done=done, remaining=0)
        return done

    @api.model
    def _commit(self):
        if not modules.module.current_test:
            self.env.cr.commit()  # pylint: disable=invalid-commit

    @api.model
    def _enroll_batches(self, trigger, scan, batch_size):
        """ Take occurrences with `scan()` -> (how many taken, ids of the flow's contacts or leads) until fewer
        than a batch come; enrol and commit each batch. Returns how many occurrences. """
        done = 0
        while True:
            taken, target_ids = scan()
            if target_ids:
                trigger.flow_id._enroll_targets(sorted(set(target_ids)))
            self._commit()
            done += taken
            if taken < batch_size:
                return done

    @api.model
    def _insert_occurrences(self, trigger, select):
        """ Record the occurrences that `select` gives (rows: res_id, occurrence), those not recorded yet;
        returns their res_ids. """
        self.env['mautomate.flow.trigger.fire'].flush_model()
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_flow_trigger_fire (trigger_id, res_id, occurrence, enrolled)
            SELECT %s, o.res_id, o.occurrence, TRUE FROM (%s) AS o(res_id, occurrence)
                ON CONFLICT DO NOTHING
         RETURNING res_id
        """, trigger.id, select))
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _taken(self, ids):
        return len(ids), ids

    @api.model
    def _scan_date(self, trigger, now, batch_size):
        """ Records whose date (moved by the offset) is a day since the last run, up to today; yearly: whose
        day and month are (29 February counts on 28 February in other years). Occurrence: that day. """
        model = self.env[trigger.target_model]
        column = SQL.identifier('r', trigger.date_field_id.name)
        today = now.date()
        first = max(trigger.last_check.date() + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS)) \
            if trigger.last_check else today
        if first > today:
            return 0, []
        signed = trigger.date_offset if trigger.date_direction == 'after' else -trigger.date_offset
        active = SQL("r.active") if 'active' in model._fields else SQL("TRUE")
        fired = SQL("""EXISTS (SELECT 1 FROM mautomate_flow_trigger_fire f
                                WHERE f.trigger_id = %s AND f.res_id = r.id AND f.occurrence = to_char(d.day, 'YYYY-MM-DD'))""",
                    trigger.id)
        if trigger.date_yearly:
            match = SQL("""(to_char(%(col)s, 'MM-DD') = to_char(d.anchor, 'MM-DD')
                            OR (to_char(%(col)s, 'MM-DD') = '02-29' AND to_char(d.anchor, 'MM-DD') = '02-28'
                                AND to_char(d.anchor + 1, 'MM-DD') = '03-01'))
                           AND %(col)s::date < d.anchor""", col=column)
        else:
            # A range on the column itself: its index serves it.
            match = SQL("%(col)s >= d.anchor AND %(col)s < d.anchor + 1", col=column)
        return self._taken(self._insert_occurrences(trigger, SQL("""
            SELECT r.id, to_char(d.day, 'YYYY-MM-DD')
              FROM (SELECT day::date AS day, (day - make_interval(days => %(signed)s))::date AS anchor
                      FROM generate_series(%(first)s::date, %(today)s::date, interval '1 day') AS day) AS d
              JOIN %(table)s r ON %(match)s
             WHERE %(active)s AND NOT %(fired)s
          ORDER BY d.day, r.id
             LIMIT %(limit)s
        """, signed=signed, first=first, today=today, table=SQL.identifier(model._table), match=match, active=active,
            fired=fired, limit=batch_size)))

    @api.model
    def _scan_inactivity(self, trigger, now, batch_size):
        """ Contacts (or leads) whose last event of the type came in the window that has just become N days
        old, and none since. Occurrence: the day of that last event (one enrolment per silence). """
        column = SQL.identifier('e', 'lead_id' if trigger.target_model == 'crm.lead' else 'partner_id')
        later = SQL.identifier('later', 'lead_id' if trigger.target_model == 'crm.lead' else 'partner_id')
        silence = timedelta(days=trigger.inactivity_days)
        since = max(trigger.last_check or now - timedelta(days=1), now - timedelta(days=MAX_CATCH_UP_DAYS))
        self.env['mautomate.event'].flush_model()
        return self._taken(self._insert_occurrences(trigger, SQL("""
            SELECT x.id, to_char(x.last, 'YYYY-MM-DD') FROM (
                SELECT %(column)s AS id, max(e.occurred_at) AS last FROM mautomate_event e
                 WHERE e.event_type = %(type)s AND e.occurred_at >= %(low)s AND e.occurred_at < %(high)s
                   AND %(column)s IS NOT NULL
              GROUP BY %(column)s) AS x
             WHERE NOT EXISTS (SELECT 1 FROM mautomate_event later
                                WHERE %(later)s = x.id AND later.event_type = %(type)s AND later.occurred_at >= %(high)s)
               AND NOT EXISTS (SELECT 1 FROM mautomate_flow_trigger_fire f
                                WHERE f.trigger_id = %(trigger)s AND f.res_id = x.id
                                  AND f.occurrence = to_char(x.last, 'YYYY-MM-DD'))
          ORDER BY x.id
             LIMIT %(limit)s
        """, column=column, later=later, type=trigger.event_type, low=since - silence, high=now - silence,
            trigger=trigger.id, limit=batch_size)))

    # Records of another model: polled on their write_date, not hooked. A hook on the model's write (what
    # base.automation patches in) would run on every write of a possibly hot model (stock moves, invoices),
    # before and after it, and is lost for SQL writes and when the model's module is not loaded yet; a poll costs
    # one indexed range query per trigger every few minutes, needs no registry patch, and sees any committed
    # change. Its delay (the cron's interval, 5 minutes) suits these business events.

    @api.model
    def _record_query(self, trigger, extra_domain=()):
        """ The records of the trigger's model matching its domain, not taken yet, as the flow's responsible
        finds them (AccessError: it may no longer read them). """
        Model = trigger.flow_id._domain_env(trigger.res_model)
        query = Model._search([*parse_domain(trigger.filter_domain), *extra_domain])
        query.add_where(SQL("NOT EXISTS (SELECT 1 FROM mautomate_flow_trigger_fire f WHERE f.trigger_id = %s AND f.res_id = %s)",
                            trigger.id, SQL.identifier(query.table, 'id')))
        return query

    @api.model
    def _record_baseline(self, trigger):
        """ The records that already match when the trigger starts never enrol: only those that start matching. """
        query = self._record_query(trigger)
        if query.is_empty():
            return
        self.env[trigger.res_model].flush_model()
        self.env['mautomate.flow.trigger.fire'].flush_model()
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_flow_trigger_fire (trigger_id, res_id, occurrence, enrolled)
            SELECT %s, m.id, '', FALSE FROM (%s) AS m(id) ON CONFLICT DO NOTHING
        """, trigger.id, query.select(SQL.identifier(query.table, 'id'))))

    @api.model
    def _scan_records(self, trigger, now, batch_size):
        """ Records matching the domain written since the last check (with an overlap), not taken yet: their
        contacts (or leads), through the trigger's contact field. """
        query = self._record_query(trigger, [('write_date', '>=', trigger.last_check - RECORD_OVERLAP)])
        if query.is_empty():
            return 0, []
        query.order = SQL.identifier(query.table, 'id')
        query.limit = batch_size
        self.env[trigger.res_model].flush_model()
        record_ids = self._insert_occurrences(trigger, query.select(SQL.identifier(query.table, 'id'), SQL("''")))
        records = self.env[trigger.res_model].sudo().with_context(active_test=False).browse(record_ids)
        return len(record_ids), records.mapped(trigger.partner_field).ids
