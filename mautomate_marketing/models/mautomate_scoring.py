import logging
import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta

from markupsafe import Markup
from psycopg2 import OperationalError
from psycopg2.extensions import TRANSACTION_STATUS_INERROR

from odoo import api, fields, models, modules
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

from ..tools.url_patterns import PATH_QUERY, glob_to_like
from .mautomate_event import EVENT_TYPES

_logger = logging.getLogger(__name__)

STAGES = [
    ('subscriber', 'Subscriber'),
    ('lead', 'Lead'),
    ('mql', 'Marketing Qualified'),
    ('sql', 'Sales Qualified'),
    ('opportunity', 'Opportunity'),
    ('customer', 'Customer'),
]
STAGE_RANK = {stage: rank for rank, (stage, _label) in enumerate(STAGES, start=1)}
GRADES = [(f'{letter}{digit}', f'{letter}{digit}') for letter in 'ABCD' for digit in '1234']
# Settings (ir.config_parameter, prefix mautomate_marketing.) and their defaults.
SCORING_PARAMS = {
    'score_half_life': 30,       # days; 0: points never decay
    'grade_fit_a': 60, 'grade_fit_b': 30, 'grade_fit_c': 10,
    'grade_score_1': 100, 'grade_score_2': 50, 'grade_score_3': 20,
    'mql_score': 50, 'sql_score': 100, 'mql_min_grade': 'B',
}
BATCH_SIZE = 5000
# Contacts (and leads) per committed batch of the full recompute: each batch hashes the ledger and the forms once.
RECOMPUTE_BATCH_SIZE = 25000
# Times a refresh batch is taken again after a concurrent change, in one cron run.
MAX_RETRIES = 5
# The scoring crons take turns: one that finds the other running comes back this much later.
TURN_RETRY_DELAY = timedelta(minutes=1)


class _ExpectedRestart(logging.Filter):
    """ Drops odoo.sql_db's error about a statement of this thread failing for a concurrent change: the batch
    is taken again, an expected outcome; other threads and other errors still log. """

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record):
        return record.thread != self.thread or not any(
            isinstance(arg, PG_CONCURRENCY_EXCEPTIONS_TO_RETRY) for arg in (record.args or ()))


@contextmanager
def expected_restarts(active=True):
    """ Within: a statement failing for a concurrent change logs no error (the caller restarts its batch). """
    if not active:
        yield
        return
    sql_logger, restart_filter = logging.getLogger('odoo.sql_db'), _ExpectedRestart()
    sql_logger.addFilter(restart_filter)
    try:
        yield
    finally:
        sql_logger.removeFilter(restart_filter)
# Events that never move a lifecycle stage by themselves: page views and CTA, form and pop-up impressions (a known contact's
# first view makes it a subscriber at the nightly recompute) and stage changes.
NO_STAGE_EVENT_TYPES = frozenset({'page_view', 'cta_view', 'form_view', 'popup_view', 'stage_change'})

# Events of `events` matching active behaviour rules `rules`. An event's path is computed once, in the subquery
# (OFFSET 0 keeps it apart from the join, which would compute it once per rule), and only for the event types
# `path_types` that a path pattern reads; ILIKE is LIKE on lower-cased text, so the path is lower-cased once too.
# A company's rule awards the events of its company and those of none.
_MATCHES = f"""
    WITH rule AS (
        SELECT * FROM (VALUES %(rules)s) AS r(id, event_type, url_like, url_full, name_like, campaign_id, min_value,
                                               points, max_total, max_period, period_days, company_id)
    )
    SELECT r.id AS rule_id, e.id AS event_id, e.partner_id, e.lead_id, e.occurred_at, r.points, r.max_total,
           r.max_period, r.period_days
      FROM (SELECT e.id, e.partner_id, e.lead_id, e.occurred_at, e.event_type, e.url, e.name, e.campaign_id, e.value, e.company_id,
                   CASE WHEN e.event_type = ANY(%(path_types)s) THEN {PATH_QUERY} END AS path
              FROM mautomate_event e
             WHERE %(events)s AND (e.partner_id IS NOT NULL OR e.lead_id IS NOT NULL) OFFSET 0) e
      JOIN rule r ON r.event_type = e.event_type
       AND (r.url_like IS NULL OR CASE WHEN r.url_full THEN e.url ILIKE r.url_like
                                       ELSE e.path LIKE r.url_like
                                            OR (strpos(e.path, '?') > 0 AND split_part(e.path, '?', 1) LIKE r.url_like) END)
       AND (r.name_like IS NULL OR e.name ILIKE r.name_like)
       AND (r.campaign_id IS NULL OR e.campaign_id = r.campaign_id)
       AND (r.min_value IS NULL OR e.value >= r.min_value)
       AND (r.company_id IS NULL OR e.company_id IS NULL OR e.company_id = r.company_id)
"""
# Candidate awards: matches not yet awarded.
_CANDIDATES = f"""
    SELECT m.* FROM ({_MATCHES}) m
     WHERE NOT EXISTS (SELECT 1 FROM mautomate_score_entry x WHERE x.rule_id = m.rule_id AND x.event_id = m.event_id)
"""
# Awards of one person (its contact, else its lead) for a rule, before the candidate `c`.
_PERSON_AWARDS = """
    CASE WHEN c.partner_id IS NOT NULL
         THEN (SELECT count(*) FROM mautomate_score_entry x WHERE x.partner_id = c.partner_id AND x.rule_id = c.rule_id)
         ELSE (SELECT count(*) FROM mautomate_score_entry x WHERE x.partner_id IS NULL AND x.lead_id = c.lead_id
                                                              AND x.rule_id = c.rule_id)
    END
"""
# Candidates of rules without a cap per period, capped per person in SQL and inserted in one statement.
_INSERT_UNCAPPED = f"""
    WITH candidate(rule_id, event_id, partner_id, lead_id, occurred_at, points, max_total, max_period, period_days) AS (
        {_CANDIDATES}
    ), ranked AS (
        SELECT c.*, row_number() OVER (PARTITION BY c.rule_id, c.partner_id, CASE WHEN c.partner_id IS NULL THEN c.lead_id END
                                          ORDER BY c.occurred_at, c.event_id) AS n
          FROM candidate c
    )
    INSERT INTO mautomate_score_entry (rule_id, event_id, partner_id, lead_id, points, date)
    SELECT c.rule_id, c.event_id, c.partner_id, c.lead_id, c.points, c.occurred_at
      FROM ranked c
     WHERE c.max_total = 0 OR c.n + {_PERSON_AWARDS} <= c.max_total
        ON CONFLICT DO NOTHING
    RETURNING partner_id, lead_id
"""


class MautomateScoring(models.AbstractModel):
    """ The scoring engine: awards behaviour points from the event log into the ledger, then keeps
    contacts' and leads' engagement, fit, grade and lifecycle stage up to date, set-based. """
    _name = 'mautomate.scoring'
    _description = 'Scoring Engine'

    @api.model
    def _get_params(self):
        get_param = self.env['ir.config_parameter'].sudo().get_param
        params = {}
        for key, default in SCORING_PARAMS.items():
            value = get_param(f'mautomate_marketing.{key}', default)
            params[key] = value if isinstance(default, str) else float(value or 0)
        if params['mql_min_grade'] not in ('A', 'B', 'C', 'D'):
            params['mql_min_grade'] = 'B'
        return params

    # ------------------------------------------------------------
    # Ledger: events -> awards
    # ------------------------------------------------------------

    @api.model
    def _score_new_events(self, event_ids, event_types=None):
        """ Called on every ingest: queue the new events to be awarded and their people refreshed by the
        refresh cron, when a rule may award them or they may move a stage (all but page views).
        `event_types`: the events' types, when known. """
        if event_ids and self._queues_events(event_types):
            self._enqueue_refresh(event_ids=event_ids)

    @api.model
    def _queues_events(self, event_types=None):
        """ Whether new events of these types (None: any) go to the refresh queue. """
        scoring_types = self.env['mautomate.score.rule']._get_scoring_event_types()
        types = None if event_types is None else set(event_types)
        may_award = bool(scoring_types) and (types is None or None in scoring_types or bool(scoring_types & types))
        may_move = types is None or bool(types - NO_STAGE_EVENT_TYPES)
        return may_award or may_move

    @api.model
    def _score_queued_events(self, event_ids):
        """ Award queued events; returns the people to refresh: those who gained awards and those whose
        events may move a stage. """
        events = SQL("e.id = ANY(%s)", list(event_ids))
        partners, leads = self._score_events(events)
        self.env.cr.execute(SQL("SELECT e.partner_id, e.lead_id FROM mautomate_event e WHERE %s AND e.event_type <> ALL(%s)",
                                events, list(NO_STAGE_EVENT_TYPES)))
        for partner_id, lead_id in self.env.cr.fetchall():
            (partners.add(partner_id) if partner_id else lead_id and leads.add(lead_id))
        return partners, leads

    @api.model
    def _score_events(self, events, rules=None):
        """ Award the points of active behaviour `rules` (all by default) for the events matching the SQL
        condition `events` (on alias e). Returns the (partner ids, lead ids) that gained awards. """
        if rules is None:
            rules = self.env['mautomate.score.rule'].sudo().search([('rule_type', '=', 'behaviour')])
        rules = rules.filtered(lambda rule: rule.active and rule.rule_type == 'behaviour')
        if not rules:
            return set(), set()
        self.env['mautomate.event'].flush_model()
        self.env['mautomate.score.entry'].flush_model()
        partners, leads = set(), set()
        uncapped = rules.filtered(lambda rule: not rule.max_per_period)
        if uncapped:
            # A concurrent change is retried by the refresh cron: not an error for the log.
            self.env.cr.execute(SQL(_INSERT_UNCAPPED, **self._match_params(uncapped), events=events), log_exceptions=False)
            for partner_id, lead_id in self.env.cr.fetchall():
                (partners.add(partner_id) if partner_id else leads.add(lead_id))
        if capped := rules - uncapped:
            more_partners, more_leads = self._award_capped(events, capped)
            partners |= more_partners
            leads |= more_leads
        self.env['mautomate.score.entry'].invalidate_model()
        return partners, leads

    @api.model
    def _match_params(self, rules):
        """ Parameters of _MATCHES for these rules: their rows, and the event types a path pattern reads. """
        rows = []
        path_types = set()
        for rule in rules:
            url_like, url_full = rule._url_like()
            name_like = rule.name_pattern and glob_to_like(rule.name_pattern.strip())
            # A rule of any event type is a row per type: rules then join events on an equality (a hash join),
            # instead of every rule being tested against every event.
            event_types = [rule.event_type] if rule.event_type else [key for key, _label in EVENT_TYPES]
            if url_like and not url_full:
                path_types.update(event_types)
            rows.extend(SQL(
                "(%s::int4, %s::varchar, lower(%s::varchar), %s::bool, %s::varchar, %s::int4, %s::float8, %s::int4, %s::int4, "
                "%s::int4, %s::int4, %s::int4)",
                rule.id, event_type, url_like, url_full, name_like or None, rule.campaign_id.id or None,
                rule.min_value or None, rule.points, rule.max_per_contact, rule.max_per_period, rule.period_days,
                rule.company_id.id or None)
                for event_type in event_types)
        return {'rules': SQL(', ').join(rows), 'path_types': sorted(path_types)}

    @api.model
    def _award_capped(self, events, rules):
        """ Rules with a cap per period: at most N awards per person in any D days, taken in time order. """
        self.env.cr.execute(SQL(_CANDIDATES + " ORDER BY 1, 3, CASE WHEN m.partner_id IS NULL THEN m.lead_id END, 5, 2",
                                **self._match_params(rules), events=events))
        by_person = defaultdict(list)
        for row in self.env.cr.fetchall():
            by_person[row[0], row[2], row[3] if not row[2] else None].append(row)
        if not by_person:
            return set(), set()
        # The awards each person already has for these rules, in time order.
        self.env.cr.execute(SQL("""
            SELECT rule_id, partner_id, CASE WHEN partner_id IS NULL THEN lead_id END, date FROM mautomate_score_entry
             WHERE rule_id = ANY(%s) AND (partner_id = ANY(%s) OR (partner_id IS NULL AND lead_id = ANY(%s)))
          ORDER BY date
        """, rules.ids, list({key[1] for key in by_person if key[1]}), list({key[2] for key in by_person if key[2]})))
        awarded = defaultdict(list)
        for rule_id, partner_id, lead_id, date in self.env.cr.fetchall():
            awarded[rule_id, partner_id, lead_id].append(date)
        accepted = []
        for key, candidates in by_person.items():
            dates = awarded[key]
            total = len(dates)
            for _rule_id, event_id, _partner_id, _lead_id, occurred_at, _points, max_total, max_period, period_days in candidates:
                if max_total and total >= max_total:
                    break
                window_start = occurred_at - timedelta(days=period_days)
                if sum(1 for date in dates if window_start < date <= occurred_at) >= max_period:
                    continue
                dates.append(occurred_at)
                total += 1
                accepted.append((key[0], event_id))
        if not accepted:
            return set(), set()
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_score_entry (rule_id, event_id, partner_id, lead_id, points, date)
            SELECT r.id, e.id, e.partner_id, e.lead_id, r.points, e.occurred_at
              FROM unnest(%(rule_ids)s::int4[], %(event_ids)s::int4[]) AS a(rule_id, event_id)
              JOIN mautomate_score_rule r ON r.id = a.rule_id
              JOIN mautomate_event e ON e.id = a.event_id
                ON CONFLICT DO NOTHING
            RETURNING partner_id, lead_id
        """, rule_ids=[rule_id for rule_id, _event in accepted],
            event_ids=[event_id for _rule, event_id in accepted]))
        partners, leads = set(), set()
        for partner_id, lead_id in self.env.cr.fetchall():
            (partners.add(partner_id) if partner_id else leads.add(lead_id))
        return partners, leads

    # ------------------------------------------------------------
    # Scores, grades and stages
    # ------------------------------------------------------------

    @api.model
    def _decayed_points(self, params, alias='x'):
        """ SQL of an award's points after decay: halved every half-life since the award's date. In float8:
        extract() would give a numeric, whose power() costs about 25 µs an award. """
        if not params['score_half_life']:
            return SQL(f"{alias}.points")
        return SQL(f"{alias}.points * power(0.5::float8, GREATEST(date_part('epoch', (now() at time zone 'UTC') - {alias}.date), 0)"
                   " / (86400.0::float8 * %s))", params['score_half_life'])

    @api.model
    def _grade_sql(self, params, fit, score):
        return SQL("""(CASE WHEN %(fit)s >= %(a)s THEN 'A' WHEN %(fit)s >= %(b)s THEN 'B' WHEN %(fit)s >= %(c)s THEN 'C' ELSE 'D' END
                    || CASE WHEN %(score)s >= %(s1)s THEN '1' WHEN %(score)s >= %(s2)s THEN '2'
                            WHEN %(score)s >= %(s3)s THEN '3' ELSE '4' END)""",
                   fit=fit, score=score, a=params['grade_fit_a'], b=params['grade_fit_b'], c=params['grade_fit_c'],
                   s1=params['grade_score_1'], s2=params['grade_score_2'], s3=params['grade_score_3'])

    @api.model
    def _stage_sql(self, params, old_stage, fit_letter, score, facts):
        """ SQL of the new stage: the furthest of the old one (stages only move forward), the CRM facts
        (a rank, SQL `facts`) and the thresholds. """
        ranks = SQL("CASE %s " + " ".join(f"WHEN '{stage}' THEN {rank}" for stage, rank in STAGE_RANK.items()) + " ELSE 0 END",
                    old_stage)
        qualified = SQL("%s <= %s", fit_letter, params['mql_min_grade'])
        threshold = SQL("CASE WHEN %(q)s AND %(score)s >= %(sql_score)s THEN %(sql)s WHEN %(q)s AND %(score)s >= %(mql_score)s "
                        "THEN %(mql)s ELSE 0 END", q=qualified, score=score, sql_score=params['sql_score'],
                        mql_score=params['mql_score'], sql=STAGE_RANK['sql'], mql=STAGE_RANK['mql'])
        rank = SQL("GREATEST(%s, %s, %s)", ranks, facts, threshold)
        return SQL("CASE %s " + " ".join(f"WHEN {rank} THEN '{stage}'" for stage, rank in STAGE_RANK.items()) + " END", rank)

    @api.model
    def _refresh_people(self, partner_ids=(), lead_ids=(), fit=False, fit_scores=None, their_leads=True):
        """ Recompute engagement (and with `fit`, fit; or take `fit_scores` {contact: fit}), grade and stage of
        these contacts and (unless not `their_leads`) of their leads, and of these leads, in SQL; then log stage
        changes and hand MQLs over to sales. """
        partner_ids = sorted({pid for pid in partner_ids if pid})
        lead_ids = set(lead_ids)
        if not partner_ids and not lead_ids:
            return
        params = self._get_params()
        self.env['res.partner'].flush_model()
        self.env['crm.lead'].flush_model()
        self.env['mautomate.score.entry'].flush_model()
        changes = []
        # Flows' score, grade and field triggers compare the values before and after (nothing to do when none runs).
        trigger_snapshot = self.env['mautomate.flow.trigger.scan']._score_snapshot(partner_ids, lead_ids)
        if fit_scores is None and partner_ids and fit:
            fit_scores = self._compute_fit(partner_ids)
        with self._without_jit():
            if partner_ids:
                changes += [('res.partner', *row) for row in self._update_partners(params, partner_ids, fit_scores)]
            if partner_ids and their_leads:
                # The leads of these contacts: theirs, and those with their e-mail.
                self.env.cr.execute(SQL("""
                    SELECT id FROM crm_lead WHERE partner_id = ANY(%(ids)s)
                     UNION
                    SELECT l.id FROM crm_lead l JOIN res_partner p ON p.email_normalized = l.email_normalized
                     WHERE p.id = ANY(%(ids)s)
                """, ids=partner_ids))
                lead_ids |= {row[0] for row in self.env.cr.fetchall()}
            if lead_ids:
                changes += [('crm.lead', *row) for row in self._update_leads(params, sorted(lead_ids))]
        if lead_ids:
            # New behaviour moves the predicted probability too.
            self.env['crm.lead'].browse(sorted(lead_ids))._mautomate_predict_probability()
        self.env['res.partner'].invalidate_model(['mautomate_score', 'mautomate_fit_score', 'mautomate_grade', 'mautomate_stage'])
        self.env['crm.lead'].invalidate_model(['mautomate_score', 'mautomate_fit_score', 'mautomate_grade', 'mautomate_stage'])
        self.env['mautomate.flow.trigger.scan']._enroll_score_changes(trigger_snapshot)
        if changes:
            self._on_stage_changes(changes)

    @api.model
    def _enqueue_refresh(self, partner_ids=(), lead_ids=(), fit=False, event_ids=()):
        """ Award these events and refresh these people (with `fit`, the contacts' fit too) within a
        second, in the refresh cron: a request only inserts queue rows, and wakes the cron. """
        rows = [(partner_id, None, None) for partner_id in set(partner_ids) if partner_id]
        rows += [(None, lead_id, None) for lead_id in set(lead_ids) if lead_id]
        rows += [(None, None, event_id) for event_id in event_ids if event_id]
        if not rows:
            return
        self.env.cr.execute(self._enqueue_query(SQL(
            "SELECT * FROM unnest(%s::int4[], %s::int4[], %s::int4[])",
            [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]), fit=fit))
        self._enqueued(self.env.cr.fetchone()[0])

    @api.model
    def _enqueue_query(self, rows, fit=False):
        """ The statement that queues `rows`, a query giving (partner_id, lead_id, event_id) rows (the
        ingest runs its INSERT in it): it returns whether a trigger of the refresh cron already waits,
        and the queued event ids in order. Run it, then call _enqueued(). """
        # Its id from the cached xmlid: env.ref() would check that the cron exists with a query of its own.
        cron_id = self.env['ir.model.data']._xmlid_to_res_id(
            'mautomate_marketing.ir_cron_mautomate_score_refresh', raise_if_not_found=True)
        # One round trip: queue, and see whether a trigger of the cron already waits. When one waits, nothing more:
        # its creator has woken the cron workers, and the run it starts takes every queued row (a run that began
        # before these rows commit triggers itself again when it finds rows left, see _refresh_queue). When none
        # waits, _enqueued() calls Odoo's _trigger(), whose NOTIFY (a transaction of its own after the commit, about
        # 10 ms) a page view thus pays only when the cron sleeps. Due by this statement: _trigger() dates its
        # triggers with the clock, not with the start of a transaction.
        return SQL("""
            WITH queued AS (
                INSERT INTO mautomate_score_queue (partner_id, lead_id, event_id, fit)
                SELECT queue.*, %(fit)s FROM (%(rows)s) AS queue(partner_id, lead_id, event_id)
                RETURNING event_id
            ), waiting AS (
                SELECT EXISTS(SELECT 1 FROM ir_cron_trigger WHERE cron_id = %(cron)s
                                         AND call_at <= statement_timestamp() at time zone 'UTC') AS found
            )
            SELECT found OR NOT EXISTS(SELECT 1 FROM queued),
                   ARRAY(SELECT event_id FROM queued WHERE event_id IS NOT NULL ORDER BY event_id)
              FROM waiting
        """, rows=rows, fit=fit, cron=cron_id)

    @api.model
    def _enqueued(self, cron_awake):
        """ After _enqueue_query's statement: wake the refresh cron unless a waiting trigger already did. """
        if not cron_awake:
            self.env.ref('mautomate_marketing.ir_cron_mautomate_score_refresh').sudo()._trigger()

    @api.model
    def _cron_refresh_queue(self, batch_size=2000, max_batches=50, auto_commit=None):
        """ Award the queued events and refresh the queued people, one committed batch at a time (unless not
        `auto_commit`; by default outside tests); a batch taken by a killed worker is rolled back with it and
        taken again. """
        if auto_commit is None:
            auto_commit = not modules.module.current_test
        with self._cron_turn('mautomate_marketing.ir_cron_mautomate_score_refresh', auto_commit) as turn:
            if turn:
                self._refresh_queue(batch_size, max_batches, auto_commit)

    @api.model
    def _refresh_queue(self, batch_size, max_batches, auto_commit):
        """ The refresh cron's batches, in its turn; a batch failing for a concurrent change is taken again. """
        done = retries = 0
        for _batch in range(max_batches):
            try:
                with expected_restarts(auto_commit and retries < MAX_RETRIES):
                    rows = self._refresh_queue_batch(batch_size)
            except OperationalError as error:
                # A contact, lead or event of the batch changed since its transaction began (a request that
                # just committed): the batch is rolled back whole and taken again in a new transaction.
                if not auto_commit or not isinstance(error, PG_CONCURRENCY_EXCEPTIONS_TO_RETRY) or retries >= MAX_RETRIES:
                    raise
                retries += 1
                self.env.cr.rollback()
                continue
            if rows is None:
                break
            done += rows
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute("SELECT count(*) FROM mautomate_score_queue")
        remaining = self.env.cr.fetchone()[0]
        if remaining and not done:
            # Rows committed after this run's last batch, by requests that saw its trigger waiting: Odoo ends a run
            # that did nothing and drops the triggers it consumed, so a trigger made now (after the run began, it
            # outlives it) runs the cron again for them. With work done, Odoo runs it again itself.
            self.env.ref('mautomate_marketing.ir_cron_mautomate_score_refresh').sudo()._trigger()
        self.env['ir.cron']._notify_progress(done=done, remaining=remaining)

    @api.model
    def _refresh_queue_batch(self, batch_size):
        """ Take a batch of the queue: award its events, refresh its people. Returns its size, None when empty. """
        self.env.cr.execute(SQL("""
            DELETE FROM mautomate_score_queue WHERE id IN (
                SELECT id FROM mautomate_score_queue ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
            RETURNING partner_id, lead_id, fit, event_id
        """, batch_size))
        rows = self.env.cr.fetchall()
        if not rows:
            return None
        partners = {row[0] for row in rows if row[0] and not row[2]}
        leads = {row[1] for row in rows if row[1]}
        if event_ids := [row[3] for row in rows if row[3]]:
            awarded_partners, awarded_leads = self._score_queued_events(event_ids)
            partners |= awarded_partners
            leads |= awarded_leads
        if fit_ids := {row[0] for row in rows if row[0] and row[2]}:
            self._refresh_people(fit_ids, fit=True)
        self._refresh_people(partners - fit_ids, leads)
        return len(rows)

    @api.model
    def _compute_fit(self, partner_ids=None):
        """ {partner id: fit points} of active fit rules, one search per rule over these contacts; without
        `partner_ids`, over all contacts: those that match a rule. """
        scores = defaultdict(int) if partner_ids is None else dict.fromkeys(partner_ids, 0)
        within = [] if partner_ids is None else [('id', 'in', partner_ids)]
        Partner = self.env['res.partner'].sudo().with_context(active_test=False)
        for rule in self.env['mautomate.score.rule'].sudo().search([('rule_type', '=', 'fit')]):
            try:
                domain = rule._get_fit_domain()
            except (ValueError, SyntaxError):
                _logger.warning("Fit rule %s has an invalid domain: skipped", rule.id)
                continue
            for partner_id in Partner._search([*within, *domain]):
                scores[partner_id] += rule.points
        return scores

    @api.model
    def _update_partners(self, params, partner_ids, fit_scores=None):
        """ Returns (id, old stage, new stage) of the contacts whose stage moved. Each fact is one join over
        these contacts, not a subquery per contact: the planner probes indexes for a few and hashes for many;
        the bounds of their ids let it read only that range of each table for a batch of consecutive ids. """
        if fit_scores is not None:
            fit_values = SQL("unnest(%s::int4[], %s::int4[])", list(fit_scores), list(fit_scores.values()))
        else:
            fit_values = SQL("unnest(%s::int4[], NULL::int4[])", partner_ids)
        self.env.cr.execute(SQL("""
            WITH target AS MATERIALIZED (
                SELECT f.id, f.fit FROM %(fit_values)s AS f(id, fit)
            ), scores AS (
                SELECT x.partner_id AS id, sum(%(decayed)s) AS score
                  FROM target t JOIN mautomate_score_entry x ON x.partner_id = t.id
                 WHERE x.partner_id BETWEEN %(low)s AND %(high)s GROUP BY x.partner_id
            ), crm AS (
                SELECT l.partner_id AS id,
                       max(CASE WHEN l.active AND s.is_won THEN %(customer)s WHEN l.active AND l.type = 'opportunity'
                                THEN %(opportunity)s ELSE %(lead)s END) AS facts
                  FROM target t JOIN crm_lead l ON l.partner_id = t.id LEFT JOIN crm_stage s ON s.id = l.stage_id
                 WHERE l.partner_id BETWEEN %(low)s AND %(high)s GROUP BY l.partner_id
            ), forms AS (
                SELECT DISTINCT e.partner_id AS id
                  FROM target t JOIN mautomate_event e ON e.partner_id = t.id
                 WHERE e.event_type = 'form_submit' AND e.partner_id BETWEEN %(low)s AND %(high)s
            ), computed AS MATERIALIZED (
                SELECT p.id, p.mautomate_stage AS old_stage, round(COALESCE(sc.score, 0)::numeric, 2)::float8 AS score,
                       COALESCE(t.fit, p.mautomate_fit_score, 0) AS fit,
                       GREATEST(crm.facts, CASE WHEN forms.id IS NOT NULL THEN %(lead)s END,
                                CASE WHEN EXISTS(SELECT 1 FROM mautomate_event e WHERE e.partner_id = p.id)
                                     THEN %(subscriber)s ELSE 0 END) AS facts
                  FROM target t JOIN res_partner p ON p.id = t.id AND p.id BETWEEN %(low)s AND %(high)s
             LEFT JOIN scores sc ON sc.id = t.id LEFT JOIN crm ON crm.id = t.id LEFT JOIN forms ON forms.id = t.id
            ), graded AS (
                SELECT c.*, CASE WHEN c.score <> 0 OR c.fit <> 0 OR c.facts > 0 OR c.old_stage IS NOT NULL
                                 THEN %(grade)s END AS grade
                  FROM computed c
            ), staged AS (
                SELECT g.*, CASE WHEN g.grade IS NULL THEN g.old_stage ELSE %(stage)s END AS stage FROM graded g
            )
            UPDATE res_partner p
               SET mautomate_score = s.score, mautomate_fit_score = s.fit, mautomate_grade = s.grade, mautomate_stage = s.stage
              FROM staged s
             WHERE p.id = s.id AND p.id BETWEEN %(low)s AND %(high)s
               AND (p.mautomate_score, p.mautomate_fit_score, p.mautomate_grade, p.mautomate_stage)
                   IS DISTINCT FROM (s.score, s.fit, s.grade, s.stage)
         RETURNING p.id, s.old_stage, s.stage
        """, fit_values=fit_values, low=min(partner_ids), high=max(partner_ids), decayed=self._decayed_points(params),
            customer=STAGE_RANK['customer'], opportunity=STAGE_RANK['opportunity'], lead=STAGE_RANK['lead'],
            subscriber=STAGE_RANK['subscriber'], grade=self._grade_sql(params, SQL('c.fit'), SQL('c.score')),
            stage=self._stage_sql(params, SQL('g.old_stage'), SQL('left(g.grade, 1)'), SQL('g.score'), SQL('g.facts'))))
        return [row for row in self.env.cr.fetchall() if row[1] != row[2]]

    @api.model
    def _update_leads(self, params, lead_ids):
        """ A lead's score is its person's: its own awards, its contact's and those of contacts with its
        e-mail (each award once); its fit is the best of those contacts'. Returns (id, old stage, new stage)
        of moved leads. """
        facts = SQL("""CASE WHEN s.is_won THEN %(customer)s WHEN l.type = 'opportunity' THEN %(opportunity)s
                            ELSE %(lead)s END""",
                    customer=STAGE_RANK['customer'], opportunity=STAGE_RANK['opportunity'], lead=STAGE_RANK['lead'])
        self.env.cr.execute(SQL("""
            WITH target AS MATERIALIZED (
                SELECT l.id, l.partner_id, l.email_normalized FROM crm_lead l WHERE l.id = ANY(%(ids)s)
            ), people AS MATERIALIZED (
                SELECT t.id AS lead_id, t.partner_id FROM target t WHERE t.partner_id IS NOT NULL
                 UNION
                SELECT t.id, p.id FROM target t JOIN res_partner p ON p.email_normalized = t.email_normalized
                 WHERE t.email_normalized IS NOT NULL
            ), awards AS (
                SELECT t.id AS lead_id, x.id, x.points, x.date FROM target t JOIN mautomate_score_entry x ON x.lead_id = t.id
                 UNION
                SELECT pe.lead_id, x.id, x.points, x.date FROM people pe JOIN mautomate_score_entry x ON x.partner_id = pe.partner_id
            ), scores AS (
                SELECT x.lead_id, sum(%(decayed)s) AS score FROM awards x GROUP BY x.lead_id
            ), fits AS (
                SELECT pe.lead_id, max(p.mautomate_fit_score) AS fit
                  FROM people pe JOIN res_partner p ON p.id = pe.partner_id GROUP BY pe.lead_id
            ), computed AS MATERIALIZED (
                SELECT l.id, l.mautomate_stage AS old_stage, round(COALESCE(sc.score, 0)::numeric, 2)::float8 AS score,
                       COALESCE(f.fit, 0) AS fit, %(facts)s AS facts
                  FROM target t JOIN crm_lead l ON l.id = t.id LEFT JOIN crm_stage s ON s.id = l.stage_id
             LEFT JOIN scores sc ON sc.lead_id = t.id LEFT JOIN fits f ON f.lead_id = t.id
            ), graded AS (
                SELECT c.*, %(grade)s AS grade FROM computed c
            ), staged AS (
                SELECT g.*, %(stage)s AS stage FROM graded g
            )
            UPDATE crm_lead l
               SET mautomate_score = s.score, mautomate_fit_score = s.fit, mautomate_grade = s.grade, mautomate_stage = s.stage
              FROM staged s
             WHERE l.id = s.id AND (l.mautomate_score, l.mautomate_fit_score, l.mautomate_grade, l.mautomate_stage)
                   IS DISTINCT FROM (s.score, s.fit, s.grade, s.stage)
         RETURNING l.id, s.old_stage, s.stage
        """, ids=lead_ids, decayed=self._decayed_points(params), facts=facts,
            grade=self._grade_sql(params, SQL('c.fit'), SQL('c.score')),
            stage=self._stage_sql(params, SQL('g.old_stage'), SQL('left(g.grade, 1)'), SQL('g.score'), SQL('g.facts'))))
        return [row for row in self.env.cr.fetchall() if row[1] != row[2]]

    # ------------------------------------------------------------
    # Why this score
    # ------------------------------------------------------------

    @api.model
    def _person_awards(self, partner_ids, lead_ids):
        """ SQL condition (alias x) of the awards of a person: its contacts' and its leads'. """
        return SQL("(x.partner_id = ANY(%s) OR x.lead_id = ANY(%s))", list(partner_ids), list(lead_ids))

    @api.model
    def _get_reasons(self, partner_ids, lead_ids, limit=3):
        """ The rules that give a person most of its score now: name, points after decay, awards. """
        if not partner_ids and not lead_ids:
            return []
        self.env['mautomate.score.entry'].flush_model()
        params = self._get_params()
        self.env.cr.execute(SQL("""
            SELECT x.rule_id, round(sum(%s)::numeric)::int4 AS points, count(*) FROM mautomate_score_entry x
             WHERE %s GROUP BY x.rule_id ORDER BY abs(sum(%s)) DESC, x.rule_id LIMIT %s
        """, self._decayed_points(params), self._person_awards(partner_ids, lead_ids), self._decayed_points(params), limit))
        rows = self.env.cr.fetchall()
        rules = self.env['mautomate.score.rule'].sudo().with_context(active_test=False).browse([row[0] for row in rows])
        return [{'name': rule.name or self.env._("Points"), 'points': points, 'count': count}
                for rule, (_rule_id, points, count) in zip(rules, rows, strict=True)]

    @api.model
    def _render_why(self, record, partner_ids, lead_ids):
        """ "Why this score", readable in five seconds: the strongest rules, then the latest awards. """
        reasons = self._get_reasons(partner_ids, lead_ids, limit=5)
        if not reasons and not record.mautomate_fit_score:
            return Markup('<p class="text-muted">%s</p>') % self.env._("No scoring activity yet.")
        # The user's own search: a salesman does not see what another's lead did.
        latest = self.env['mautomate.score.entry'].search(
            ['|', ('partner_id', 'in', list(partner_ids)), ('lead_id', 'in', list(lead_ids))], limit=5)
        parts = [Markup('<p><strong>%s</strong></p>') % self.env._(
            "Grade %(grade)s: engagement %(score)s, fit %(fit)s",
            grade=record.mautomate_grade or '-', score=round(record.mautomate_score), fit=record.mautomate_fit_score)]
        if reasons:
            parts.append(Markup('<table class="table table-sm o_mautomate_why_reasons"><thead><tr><th>%s</th><th class="text-end">%s</th>'
                                '<th class="text-end">%s</th></tr></thead><tbody>%s</tbody></table>') % (
                self.env._("Strongest reasons"), self.env._("Points now"), self.env._("Times"),
                Markup().join(Markup('<tr><td>%s</td><td class="text-end">%+d</td><td class="text-end">%s</td></tr>') % (
                    reason['name'], reason['points'], reason['count']) for reason in reasons)))
        if latest:
            parts.append(Markup('<table class="table table-sm o_mautomate_why_latest"><thead><tr><th>%s</th><th>%s</th>'
                                '<th class="text-end">%s</th></tr></thead><tbody>%s</tbody></table>') % (
                self.env._("Latest scoring events"), self.env._("Rule"), self.env._("Points"),
                Markup().join(Markup('<tr><td>%s · %s</td><td>%s</td><td class="text-end">%+d</td></tr>') % (
                    fields.Datetime.context_timestamp(self, entry.date).strftime('%Y-%m-%d %H:%M'),
                    entry.event_name or entry.event_type or '', entry.rule_id.name or '', entry.points) for entry in latest)))
        return Markup().join(parts)

    @api.model
    def _action_ledger(self, title, domain):
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_score_entry_action')
        action.update({'display_name': self.env._("Score Ledger: %s", title), 'domain': domain, 'context': {}})
        return action

    # ------------------------------------------------------------
    # Stage changes: an event each, and the hand-off to sales
    # ------------------------------------------------------------

    @api.model
    def _on_stage_changes(self, changes):
        labels = dict(STAGES)
        records = {model: self.env[model].sudo().browse([row[1] for row in changes if row[0] == model])
                   for model in ('res.partner', 'crm.lead')}
        events = []
        for model, record_id, old_stage, new_stage in changes:
            record = records[model].browse(record_id)
            is_lead = model == 'crm.lead'
            events.append({
                'event_type': 'stage_change',
                'source': 'crm',
                'name': (self.env._("Lead %(lead)s: %(stage)s", lead=record.name, stage=labels[new_stage]) if is_lead
                         else self.env._("Lifecycle stage: %s", labels[new_stage])),
                'partner_id': record.partner_id.id if is_lead else record.id,
                'lead_id': record.id if is_lead else None,
                'res_model': model,
                'res_id': record.id,
                'payload': {'from': old_stage or None, 'to': new_stage},
            })
        self.env['mautomate.event'].sudo()._ingest(events)
        handed = [(model, record_id) for model, record_id, old_stage, new_stage in changes
                  if STAGE_RANK.get(old_stage, 0) < STAGE_RANK['mql'] and new_stage in ('mql', 'sql')]
        if handed:
            leads = records['crm.lead'].browse([record_id for model, record_id in handed if model == 'crm.lead'])
            partners = records['res.partner'].browse([record_id for model, record_id in handed if model == 'res.partner'])
            leads |= partners._mautomate_leads_for_handoff()
            leads._mautomate_hand_off()

    # ------------------------------------------------------------
    # Full recompute: rule changes, decay and fit, in committed batches
    # ------------------------------------------------------------

    @api.model
    def _cron_recompute(self, auto_commit=None):
        """ Nightly, and woken by rule and settings changes: each batch is committed (unless not `auto_commit`; by
        default outside tests). """
        if auto_commit is None:
            auto_commit = not modules.module.current_test
        with self._cron_turn('mautomate_marketing.ir_cron_mautomate_score_recompute', auto_commit) as turn:
            if turn:
                self._recompute_all(auto_commit=auto_commit)

    @contextmanager
    def _cron_turn(self, cron_xmlid, auto_commit):
        """ The scoring crons update the same contacts and leads: they take turns, with a lock of the database
        session held across their committed batches. Yields whether this cron has its turn; if the other holds
        it, this one comes back shortly (its trigger) rather than waiting or colliding. """
        cr = self.env.cr
        cr.execute("SELECT pg_try_advisory_lock(hashtext('mautomate_marketing.scoring_crons'))")
        if not cr.fetchone()[0]:
            self.env.ref(cron_xmlid).sudo()._trigger(fields.Datetime.now() + TURN_RETRY_DELAY)
            yield False
            return
        try:
            if auto_commit:
                # The batches read what the other cron committed before it released its turn.
                cr.commit()  # pylint: disable=invalid-commit
            yield True
        finally:
            if cr.connection.info.transaction_status == TRANSACTION_STATUS_INERROR:
                cr.rollback()
            cr.execute("SELECT pg_advisory_unlock(hashtext('mautomate_marketing.scoring_crons'))")

    @api.model
    def _recompute_all(self, auto_commit=False, batch_size=RECOMPUTE_BATCH_SIZE):
        """ Rebuild the ledger of changed rules, then refresh every scored contact and lead: decay and
        fit move scores even without new events. """
        done = 0
        Rule = self.env['mautomate.score.rule'].sudo().with_context(active_test=False)
        if rules := Rule.search([('needs_rebuild', '=', True)]):
            self._rebuild_rules(rules, auto_commit)
            done += len(rules)
        fit_scores = self._compute_fit() if Rule.search_count([('rule_type', '=', 'fit'), ('active', '=', True)], limit=1) else {}
        # A probe of two indexes per contact, not a pass over the log.
        self.env.cr.execute("""
            SELECT p.id FROM res_partner p
             WHERE p.mautomate_grade IS NOT NULL OR p.mautomate_stage IS NOT NULL
                OR EXISTS(SELECT 1 FROM mautomate_score_entry x WHERE x.partner_id = p.id)
                OR EXISTS(SELECT 1 FROM mautomate_event e WHERE e.partner_id = p.id)
        """)
        partner_ids = sorted({row[0] for row in self.env.cr.fetchall()} | set(fit_scores))
        for start in range(0, len(partner_ids), batch_size):
            batch = partner_ids[start:start + batch_size]
            # Their leads come after all contacts, once each, below.
            self._refresh_people(batch, fit_scores={pid: fit_scores.get(pid, 0) for pid in batch}, their_leads=False)
            done += 1
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute(SQL("""
            SELECT l.id FROM crm_lead l WHERE l.active
             UNION
            SELECT l.id FROM unnest(%(ids)s::int4[]) c(id) JOIN crm_lead l ON l.partner_id = c.id
             UNION
            SELECT l.id FROM unnest(%(ids)s::int4[]) c(id) JOIN res_partner p ON p.id = c.id
              JOIN crm_lead l ON l.email_normalized = p.email_normalized
          ORDER BY 1
        """, ids=partner_ids))
        lead_ids = [row[0] for row in self.env.cr.fetchall()]
        for start in range(0, len(lead_ids), batch_size):
            self._refresh_people(lead_ids=lead_ids[start:start + batch_size])
            done += 1
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env['ir.cron']._notify_progress(done=done, remaining=0)

    @api.model
    def _rebuild_rules(self, rules, auto_commit=False, batch_size=1000000):
        """ Award changed rules anew over the whole log. The awards they give now are computed into a temporary
        table, in one pass over the log for all of them (caps included); then the ledger follows it, in
        committed batches of events: awards no longer given are deleted, changed ones updated and new ones
        inserted, and the awards that did not change are not written. """
        self.env['mautomate.event'].flush_model()
        self.env['mautomate.score.entry'].flush_model()
        cr = self.env.cr
        behaviour = rules.filtered(lambda rule: rule.active and rule.rule_type == 'behaviour')
        if not behaviour:
            cr.execute("DELETE FROM mautomate_score_entry WHERE rule_id = ANY(%s)", [rules.ids])
        else:
            cr.execute("SELECT COALESCE(min(id), 0), COALESCE(max(id), 0) FROM mautomate_event")
            low, high = cr.fetchone()
            with self._without_jit():
                self._compute_awards(behaviour, high)
                # Awards of events deleted since (retention) are not given any more.
                cr.execute("DELETE FROM mautomate_score_entry WHERE rule_id = ANY(%s) AND event_id IS NULL", [rules.ids])
                # Events after `high` were awarded by the refresh cron, with these rules as they are now: kept.
                for start in range(low, high + 1, batch_size):
                    self._apply_awards(rules, start, min(start + batch_size, high + 1))
                    if auto_commit:
                        cr.commit()  # pylint: disable=invalid-commit
            cr.execute("DROP TABLE mautomate_award")
        rules.needs_rebuild = False
        self.env['mautomate.score.entry'].invalidate_model()
        if auto_commit:
            cr.commit()  # pylint: disable=invalid-commit

    @api.model
    def _compute_awards(self, rules, high):
        """ Fill the temporary table mautomate_award with the awards of behaviour `rules` over the events up to
        id `high`, as if the ledger were empty: per person (its contact, else its lead) and rule in time
        order, at most max_per_contact in all and max_per_period in any period_days days. It outlives the
        batches' commits (a temporary table of this connection). """
        cr = self.env.cr
        cr.execute("DROP TABLE IF EXISTS mautomate_award")
        cr.execute(SQL(f"""
            CREATE TEMP TABLE mautomate_award AS
            SELECT m.*, COALESCE(m.partner_id, -m.lead_id) AS person FROM ({_MATCHES}) m
        """, **self._match_params(rules), events=SQL("e.id <= %s", high)))
        cr.execute("CREATE INDEX ON mautomate_award (event_id)")
        # Only the matches of capped rules are put in order (a sort of those, not of all).
        cr.execute("""
            DELETE FROM mautomate_award a
             USING (SELECT rule_id, event_id, max_total,
                           row_number() OVER (PARTITION BY rule_id, person ORDER BY occurred_at, event_id) AS n
                      FROM mautomate_award WHERE max_period = 0 AND max_total > 0) r
             WHERE r.n > r.max_total AND a.rule_id = r.rule_id AND a.event_id = r.event_id
        """)
        if any(rule.max_per_period for rule in rules):
            self._cap_awards_per_period()
        cr.execute("ANALYZE mautomate_award")

    @api.model
    def _cap_awards_per_period(self):
        """ Keep, of mautomate_award's matches of rules capped per period, those the cap lets through: a walk
        down each person's matches of a rule in time order (a step per match, all people at once), carrying
        how many were awarded and the dates of the last max_period awards. A match is awarded while fewer
        than max_period of those fall within the period_days before it, and fewer than max_total in all. """
        cr = self.env.cr
        cr.execute("""
            CREATE TEMP TABLE mautomate_award_walk AS
            SELECT rule_id, person, event_id, occurred_at, max_total, max_period, period_days,
                   row_number() OVER (PARTITION BY rule_id, person ORDER BY occurred_at, event_id) AS n
              FROM mautomate_award WHERE max_period > 0
        """)
        cr.execute("CREATE INDEX ON mautomate_award_walk (rule_id, person, n)")
        cr.execute("ANALYZE mautomate_award_walk")
        cr.execute("""
            WITH RECURSIVE walk(rule_id, person, n, event_id, awarded, total, recent) AS (
                SELECT a.rule_id, a.person, a.n, a.event_id, TRUE, 1, ARRAY[a.occurred_at]
                  FROM mautomate_award_walk a WHERE a.n = 1
                 UNION ALL
                SELECT a.rule_id, a.person, a.n, a.event_id, k.ok, w.total + k.ok::int4,
                       CASE WHEN k.ok THEN (w.recent || a.occurred_at)[greatest(1, cardinality(w.recent) + 2 - a.max_period):]
                            ELSE w.recent END
                  FROM walk w
                  -- LIMIT keeps the next match a lookup in the index, not a join over the table at each step
                  CROSS JOIN LATERAL (SELECT * FROM mautomate_award_walk a
                                       WHERE a.rule_id = w.rule_id AND a.person = w.person AND a.n = w.n + 1 LIMIT 1) a
                  CROSS JOIN LATERAL (SELECT (SELECT count(*) FROM unnest(w.recent) d
                                               WHERE d > a.occurred_at - a.period_days * interval '1 day') < a.max_period AS ok) k
                 WHERE a.max_total = 0 OR w.total < a.max_total
            )
            DELETE FROM mautomate_award a
             WHERE a.max_period > 0
               AND NOT EXISTS (SELECT 1 FROM walk w WHERE w.awarded AND w.rule_id = a.rule_id AND w.event_id = a.event_id)
        """)
        cr.execute("DROP TABLE mautomate_award_walk")

    @api.model
    def _apply_awards(self, rules, start, end):
        """ Make the ledger of `rules` for the events of ids in [start, end) what mautomate_award says: one join
        of both finds the differences, which alone are written. """
        self.env.cr.execute("""
            WITH diff AS MATERIALIZED (
                SELECT x.id AS entry_id, a.rule_id, a.event_id, a.partner_id, a.lead_id, a.points, a.occurred_at
                  FROM (SELECT * FROM mautomate_score_entry
                         WHERE rule_id = ANY(%(rules)s) AND event_id >= %(start)s AND event_id < %(end)s) x
                  FULL JOIN (SELECT * FROM mautomate_award WHERE event_id >= %(start)s AND event_id < %(end)s) a
                    ON a.rule_id = x.rule_id AND a.event_id = x.event_id
                 WHERE x.id IS NULL OR a.rule_id IS NULL
                    OR (x.points, x.partner_id, x.lead_id, x.date) IS DISTINCT FROM (a.points, a.partner_id, a.lead_id, a.occurred_at)
            ), deleted AS (
                DELETE FROM mautomate_score_entry x USING diff d WHERE x.id = d.entry_id AND d.rule_id IS NULL
            ), updated AS (
                UPDATE mautomate_score_entry x
                   SET points = d.points, partner_id = d.partner_id, lead_id = d.lead_id, date = d.occurred_at
                  FROM diff d WHERE x.id = d.entry_id AND d.rule_id IS NOT NULL
            )
            INSERT INTO mautomate_score_entry (rule_id, event_id, partner_id, lead_id, points, date)
            SELECT d.rule_id, d.event_id, d.partner_id, d.lead_id, d.points, d.occurred_at FROM diff d WHERE d.entry_id IS NULL
             -- in the event log's order: each foreign key check and index insert lands next to the previous one
             ORDER BY d.event_id, d.rule_id
                ON CONFLICT DO NOTHING
        """, {'rules': rules.ids, 'start': start, 'end': end})

    @contextmanager
    def _without_jit(self):
        """ The planner overestimates the set-based statements of the scoring (correlated subqueries, pattern
        joins): JIT compiling them costs about a second a statement, more than running them. Off inside, then
        as before (a transaction-local setting). """
        self.env.cr.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
        jit = self.env.cr.fetchone()[0]
        yield
        self.env.cr.execute("SELECT set_config('jit', %s, true)", [jit])

    @api.model
    def _trigger_recompute(self):
        self.env.ref('mautomate_marketing.ir_cron_mautomate_score_recompute').sudo()._trigger()
