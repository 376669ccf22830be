""" Scoring benchmark: full recompute, scoring cost per ingested event, tracking with rules, predictive training.

Run with bench/scoring.sh, which finds Odoo and installs the module on its own database. The first
run builds, in SQL, 100,000 contacts (and 1,000 companies), 2,000,000 events over a year and 5,000
leads (half of them won or lost, the outcome following the person's behaviour), creates 10 behaviour
and 3 fit rules and runs a first recompute (every contact's first stage, MQLs handed to sales); later
runs reuse all of it. Targets (issue #6):

* full recompute (every rule awarded anew over the log, then every contact and lead refreshed) < 60 s,
  and <= 3x a bare SQL GROUP BY of the same rules over the same events, matched by the engine's own SQL;
* scoring adds < 5 ms to the ingestion of one event of a known contact that the event does not hand to
  sales (a hand-off, CRM work done once a contact, is measured apart); these measures are rolled back;
* beacon ingestion with the 10 rules >= 0.8x the rate without rules, on a real server with 2 workers;
* a tracked page view of a known contact, matching a rule, <= 1.10x the same page untracked;
* predictive training: time, AUC next to Odoo's automated probability on the same held-out leads.

Times within one run compare with each other; other processes on the machine move them all.
"""
import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # bench/scale.py: connect to a database through Odoo's registry
import tracking  # bench/tracking.py: start a server, parse its request log

CONTACTS = 100_000
KNOWN = 80_000              # browser b <= KNOWN belongs to contact b; e-mail and API events always name their contact
COMPANIES = 1_000           # contact c works for company 1 + c % COMPANIES when c % 3 = 0
EVENTS = 2_000_000
DAYS = 365
LEADS = 5_000               # lead j: contact 16 j; even j are closed, won more often the more engaged the person
MARKER = 'mautomate_marketing.bench_scoring'
SETTLED = 'mautomate_marketing.bench_scoring_settled'
RULE_PREFIX = 'Bench: '
BEHAVIOUR_RULES = [
    {'name': 'Pricing page', 'event_type': 'page_view', 'url_pattern': '/pricing*', 'points': 10},
    {'name': 'Jobs page', 'event_type': 'page_view', 'url_pattern': '/jobs*', 'points': -10},
    {'name': 'Contact page', 'event_type': 'page_view', 'url_pattern': '/contactus*', 'points': 5, 'max_per_contact': 3},
    {'name': 'Form submitted', 'event_type': 'form_submit', 'points': 30},
    {'name': 'E-mail opened', 'event_type': 'email_open', 'points': 2, 'max_per_period': 3, 'period_days': 7},
    {'name': 'E-mail clicked', 'event_type': 'email_click', 'points': 5},
    {'name': 'E-mail bounced', 'event_type': 'email_bounce', 'points': -5},
    {'name': 'Whitepaper', 'event_type': 'download', 'name_pattern': '*whitepaper*', 'points': 15},
    {'name': 'Demo asked', 'event_type': 'cta_click', 'name_pattern': 'Book a demo*', 'points': 20},
    {'name': 'Video watched 30 s', 'event_type': 'custom', 'name_pattern': 'Video watched*', 'min_value': 30, 'points': 5},
]
FIT_RULES = [
    {'name': 'Target country', 'points': 30, 'domain': "[('country_id.code', 'in', ['BE', 'SE', 'DK'])]"},
    {'name': 'Decision maker', 'points': 20, 'domain': "['|', ('function', 'ilike', 'director'), ('function', 'ilike', 'manager')]"},
    {'name': 'Works for a company', 'points': 10, 'domain': "[('parent_id', '!=', False)]"},
]

BUILD_SQL = """
SET LOCAL session_replication_role = replica;  -- the rows are consistent by construction: skip FK triggers
CREATE TEMP TABLE bench_base ON COMMIT DROP AS SELECT
    (SELECT COALESCE(MAX(id), 0) FROM res_partner) AS p0,
    (SELECT COALESCE(MAX(id), 0) FROM crm_lead) AS l0,
    (SELECT id FROM crm_stage WHERE NOT COALESCE(is_won, FALSE) ORDER BY sequence, id LIMIT 1) AS stage,
    (SELECT id FROM crm_stage WHERE is_won ORDER BY sequence, id LIMIT 1) AS won_stage,
    (SELECT MIN(id) FROM crm_team) AS team,
    ARRAY(SELECT id FROM res_country WHERE code IN ('BE', 'DE', 'DK', 'FR', 'SE', 'US') ORDER BY code) AS countries,
    now() at time zone 'UTC' AS now;
-- How engaged a person is, 0-9: drives what its browser does and whether its leads are won.
CREATE FUNCTION pg_temp.interest(n int8) RETURNS int4 IMMUTABLE LANGUAGE sql AS 'SELECT ((n * 2654435761) %% 1000003 %% 10)::int4';
CREATE FUNCTION pg_temp.draw(n int8, modulo int4) RETURNS int4 IMMUTABLE LANGUAGE sql
    AS 'SELECT ((hashint8(n)::int8 + 2147483648) %% modulo)::int4';

INSERT INTO res_partner (id, name, complete_name, commercial_partner_id, country_id, type, active, is_company, partner_share,
                         lang, create_uid, write_uid, create_date, write_date)
SELECT p0 + %(contacts)s + k, 'Company ' || k, 'Company ' || k, p0 + %(contacts)s + k, countries[1 + k %% 6], 'contact', TRUE,
       TRUE, TRUE, 'en_US', 1, 1, now - interval '400 days', now - interval '400 days'
  FROM bench_base, generate_series(1, %(companies)s) k;

INSERT INTO res_partner (id, name, complete_name, email, email_normalized, parent_id, commercial_partner_id, function, country_id,
                         type, active, is_company, partner_share, lang, create_uid, write_uid, create_date, write_date)
SELECT p0 + c, 'Person ' || c, CASE WHEN company IS NOT NULL THEN 'Company ' || (company - p0 - %(contacts)s) || ', ' ELSE '' END
       || 'Person ' || c, 'person' || c || '@scoring.example.com', 'person' || c || '@scoring.example.com', company,
       COALESCE(company, p0 + c),
       CASE c %% 5 WHEN 0 THEN 'Marketing Director' WHEN 1 THEN 'Sales Manager' WHEN 2 THEN 'Engineer' WHEN 3 THEN 'Student' END,
       countries[1 + (c / 7) %% 6], 'contact', TRUE, FALSE, TRUE, 'en_US', 1, 1, now - interval '400 days', now - interval '400 days'
  FROM bench_base, generate_series(1, %(contacts)s) c,
       LATERAL (SELECT CASE WHEN c %% 3 = 0 THEN p0 + %(contacts)s + 1 + c %% %(companies)s END AS company) co;

INSERT INTO crm_lead (id, name, type, active, stage_id, team_id, company_id, user_id, priority, probability, partner_id,
                      email_from, email_normalized, email_state, phone, phone_state, contact_name, country_id, date_open,
                      date_closed, date_last_stage_update, create_uid, write_uid, create_date, write_date)
SELECT l0 + j, 'Opportunity ' || j, 'opportunity', outcome <> 'lost', CASE WHEN outcome = 'won' THEN won_stage ELSE stage END,
       team, 1, 2, '1', CASE outcome WHEN 'won' THEN 100 WHEN 'lost' THEN 0 ELSE 10 END, p0 + 16 * j,
       'person' || 16 * j || '@scoring.example.com', 'person' || 16 * j || '@scoring.example.com', 'correct',
       CASE WHEN has_phone THEN '+32 470 12 34 ' || lpad((j %% 100)::text, 2, '0') END, CASE WHEN has_phone THEN 'correct' END,
       'Person ' || 16 * j, countries[1 + (16 * j / 7) %% 6], created, CASE WHEN outcome <> 'open' THEN closed END,
       COALESCE(CASE WHEN outcome <> 'open' THEN closed END, created), 2, 2, created,
       COALESCE(CASE WHEN outcome <> 'open' THEN closed END, created)
  FROM bench_base, generate_series(1, %(leads)s) j,
       LATERAL (SELECT CASE WHEN j %% 2 = 1 THEN 'open'
                            WHEN pg_temp.draw(j, 1000) < 150 + 70 * pg_temp.interest(16 * j) THEN 'won' ELSE 'lost' END AS outcome,
                       now - (30 + j %% 300) * interval '1 day' AS created,
                       now - (j %% 30) * interval '1 day' AS closed) o,
       -- Odoo's automated probability reads the phone: a weak signal
       LATERAL (SELECT pg_temp.draw(j + 7777777, 10) < CASE WHEN outcome = 'won' THEN 7 ELSE 5 END AS has_phone) ph;

-- Seven events in ten are page views; the person's interest makes pricing pages, whitepapers, demo requests
-- and forms likelier. A form comes with its person's lead when there is one.
INSERT INTO mautomate_event (id, occurred_at, event_type, source, name, url, value, anonymous_id, partner_id, lead_id,
                             res_model, res_id, create_uid, write_uid, create_date, write_date)
SELECT i, at, kind.event_type, kind.source, kind.name, kind.url, kind.value,
       CASE WHEN kind.source IN ('website', 'tracker') THEN md5('browser ' || b) END,
       CASE WHEN kind.source IN ('website', 'tracker') AND b > %(known)s THEN NULL ELSE p0 + b END,
       CASE WHEN kind.event_type = 'form_submit' AND lead THEN l0 + b / 16 END,
       CASE WHEN kind.event_type = 'form_submit' AND lead THEN 'crm.lead' END,
       CASE WHEN kind.event_type = 'form_submit' AND lead THEN l0 + b / 16 END,
       1, 1, at, at
  FROM bench_base, generate_series(1, %(events)s) i,
       LATERAL (SELECT now - (1 - i::float8 / %(events)s) * %(days)s * interval '1 day' AS at,
                       1 + pg_temp.draw(i, %(contacts)s) AS b, pg_temp.draw(i + 100000000, 100) AS r,
                       pg_temp.draw(i + 200000000, 50) AS s) h,
       LATERAL (SELECT pg_temp.interest(b) AS interest, b %% 16 = 0 AND b / 16 <= %(leads)s AS lead) p,
       LATERAL (SELECT CASE WHEN r < 60 THEN 'page_view' WHEN r < 70 THEN 'email_sent' WHEN r < 76 THEN 'email_open'
                            WHEN r < 78 THEN 'email_click' WHEN r < 79 THEN 'email_bounce' WHEN r < 80 THEN 'email_reply'
                            WHEN r < 82 THEN 'link_click'
                            WHEN r < 84 THEN CASE WHEN s < 20 + 3 * interest THEN 'download' ELSE 'page_view' END
                            WHEN r < 86 THEN CASE WHEN s < 20 + 3 * interest THEN 'cta_click' ELSE 'page_view' END
                            WHEN r < 87 THEN CASE WHEN s < 10 + 4 * interest THEN 'form_submit' ELSE 'page_view' END
                            WHEN r < 89 THEN 'custom' ELSE 'page_view' END AS event_type) t,
       LATERAL (SELECT CASE WHEN s < 2 + interest THEN CASE WHEN s %% 2 = 0 THEN '/pricing' ELSE '/pricing?plan=pro' END
                            WHEN s < 12 THEN '/blog/post-' || i %% 2000 WHEN s < 14 THEN '/jobs/engineer-' || i %% 5
                            WHEN s < 18 THEN '/contactus' WHEN s < 30 THEN '/product/' || i %% 40
                            ELSE '/blog/post-' || i %% 2000 END AS path) u,
       LATERAL (SELECT t.event_type,
                       CASE WHEN t.event_type IN ('page_view', 'form_submit') THEN 'website'
                            WHEN t.event_type IN ('download', 'cta_click') THEN 'tracker'
                            WHEN t.event_type = 'custom' THEN 'api' ELSE 'email' END AS source,
                       CASE t.event_type WHEN 'page_view' THEN 'Page ' || u.path
                            WHEN 'download' THEN CASE WHEN s < 10 + 3 * interest THEN 'Whitepaper: marketing automation'
                                                      ELSE 'Price list.pdf' END
                            WHEN 'cta_click' THEN CASE WHEN s < 5 * interest THEN 'Book a demo' ELSE 'Subscribe' END
                            WHEN 'form_submit' THEN 'Contact us' WHEN 'custom' THEN 'Video watched'
                            ELSE 'Newsletter ' || i %% 50 END AS name,
                       CASE WHEN t.event_type IN ('page_view', 'form_submit') THEN 'https://www.example.com' || u.path
                            WHEN t.event_type IN ('download', 'cta_click') THEN 'https://www.example.com/resources' END AS url,
                       CASE WHEN t.event_type = 'custom' THEN 3 * s END AS value) kind;

-- The known contacts' browsers are proven (a login, a signed mail link): their new events find the contact there.
INSERT INTO mautomate_proven_browser (browser_id, partner_id, proof, create_uid, write_uid, create_date, write_date)
SELECT md5('browser ' || b), p0 + b, 'login', 1, 1, now, now FROM bench_base, generate_series(1, %(known)s) b;

SELECT setval('res_partner_id_seq', (SELECT MAX(id) FROM res_partner));
SELECT setval('crm_lead_id_seq', (SELECT MAX(id) FROM crm_lead));
SELECT setval('mautomate_event_id_seq', (SELECT MAX(id) FROM mautomate_event));
INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
SELECT %(marker)s, %(size)s, 1, 1, now, now FROM bench_base;
"""


def build(odoo, registry):
    """ Fill the database once (event indexes dropped during the load, rebuilt after, as scale.py does). """
    # Its known browsers are proven since the claimed/proven split: a database built before lacks them.
    size = f'{EVENTS}/{CONTACTS}/{LEADS}/proven'
    with registry.cursor() as cr:
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = %s", [MARKER])
        if (cr.fetchone() or [None])[0] == size:
            return False
        cr.execute("SELECT COUNT(*) FROM mautomate_event")
        assert cr.fetchone()[0] < 1000, "the benchmark database already holds events: drop it first"
        cr.execute("""SELECT indexname, indexdef FROM pg_indexes
                       WHERE tablename = 'mautomate_event' AND indexname <> 'mautomate_event_pkey'""")
        indexes = cr.fetchall()
        for name, _definition in indexes:
            cr.execute(f'DROP INDEX "{name}"')
        cr.execute("DELETE FROM mautomate_event")
        start = time.perf_counter()
        cr.execute(BUILD_SQL, {'contacts': CONTACTS, 'companies': COMPANIES, 'known': KNOWN, 'leads': LEADS,
                               'events': EVENTS, 'days': DAYS, 'marker': MARKER, 'size': size})
        print(f"built {EVENTS:,} events, {CONTACTS:,} contacts, {LEADS:,} leads in {time.perf_counter() - start:.0f} s", flush=True)
        start = time.perf_counter()
        for _name, definition in indexes:
            cr.execute(definition)
        print(f"indexed the log in {time.perf_counter() - start:.0f} s", flush=True)
    vacuum(registry)
    return True


def vacuum(registry, tables=('res_partner', 'crm_lead', 'mautomate_event', 'mautomate_score_entry')):
    """ VACUUM sets the visibility map that index-only scans need, as autovacuum would on a live log. """
    tracking.vacuum(registry.db_name, tables)


def settle(odoo, registry):
    """ Once: the benchmark's rules (every other rule archived), Odoo's lead scoring table, and a first
    recompute, which gives every contact its first stage and hands MQLs over to sales. """
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        if env['ir.config_parameter'].get_param(SETTLED):
            return
        Rule = env['mautomate.score.rule'].with_context(active_test=False)
        if Rule.search_count([('name', '=like', RULE_PREFIX + '%')]) != len(BEHAVIOUR_RULES) + len(FIT_RULES):
            Rule.search([]).unlink()
            Rule.create([{**vals, 'name': RULE_PREFIX + vals['name'], 'rule_type': 'behaviour'} for vals in BEHAVIOUR_RULES]
                        + [{**vals, 'name': RULE_PREFIX + vals['name'], 'rule_type': 'fit'} for vals in FIT_RULES])
        # Odoo learns from leads created since crm.pls_start_date (8 days before installation): all of them here.
        env['ir.config_parameter'].set_param('crm.pls_start_date', '2000-01-01')
        start = time.perf_counter()
        env['crm.lead']._cron_update_automated_probabilities()
        print(f"Odoo's automated probabilities computed in {time.perf_counter() - start:.0f} s", flush=True)
        cr.commit()
        start = time.perf_counter()
        env['mautomate.scoring']._recompute_all(auto_commit=True)
        env['mautomate.scoring']._cron_refresh_queue(max_batches=1000)
        print(f"first recompute (every contact's first stage, MQLs handed over) in {time.perf_counter() - start:.0f} s", flush=True)
        env['ir.config_parameter'].set_param(SETTLED, '1')
    vacuum(registry)


def bench_rules(env):
    return env['mautomate.score.rule'].with_context(active_test=False).search([('name', '=like', RULE_PREFIX + '%')])


def set_rules_active(registry, rule_ids, active):
    """ Switch the benchmark's rules on or off for this process and, through the database, for the server's. """
    with registry.cursor() as cr:
        cr.execute("UPDATE mautomate_score_rule SET active = %s WHERE id = ANY(%s)", [active, rule_ids])
    registry.clear_cache()
    registry.signal_changes()


def verdict(ok):
    return 'PASS' if ok else 'MISS'


# ------------------------------------------------------------
# 1. Full recompute, next to its SQL floor
# ------------------------------------------------------------

def floor_query(env, rules, with_filters=True):
    """ The same rules over the same events as one GROUP BY: no ledger, caps, decay, grades or stages. With
    filters, the events match the rules as the engine matches them (its own SQL, the URL's path computed
    once an event); without, on the event type only. """
    from odoo.tools import SQL

    from odoo.addons.mautomate_marketing.models.mautomate_scoring import _MATCHES

    params = env['mautomate.scoring']._match_params(rules)
    if with_filters:
        matches = SQL(_MATCHES, **params, events=SQL("TRUE"))
    else:
        matches = SQL("""
            WITH rule AS (
                SELECT * FROM (VALUES %(rules)s) AS r(id, event_type, url_like, url_full, name_like, campaign_id, min_value,
                                                       points, max_total, max_period, period_days)
            )
            SELECT e.partner_id, r.points FROM mautomate_event e JOIN rule r ON r.event_type = e.event_type
        """, rules=params['rules'])
    return SQL("""
        SELECT count(*), sum(points) FROM (
            SELECT m.partner_id, sum(m.points) AS points FROM (%s) m
             WHERE m.partner_id IS NOT NULL
          GROUP BY m.partner_id) per_contact
    """, matches)


def recompute_figures(odoo, registry):
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        behaviour = bench_rules(env).filtered(lambda rule: rule.rule_type == 'behaviour')
        floors = {}
        for with_filters in (True, False):
            query = floor_query(env, behaviour, with_filters)
            times = []
            for _run in range(3):
                start = time.perf_counter()
                cr.execute(query)
                times.append(time.perf_counter() - start)
                contacts, _points = cr.fetchone()
            floors[with_filters] = (min(times), contacts)
        # The best of two runs, as the floor is the best of three: other processes on the machine slow single runs.
        runs = []
        for _run in range(2):
            cr.execute("UPDATE mautomate_score_rule SET needs_rebuild = TRUE WHERE id = ANY(%s)", [bench_rules(env).ids])
            cr.commit()
            env.invalidate_all()
            start = time.perf_counter()
            env['mautomate.scoring']._recompute_all(auto_commit=True)
            runs.append(time.perf_counter() - start)
        full = min(runs)
        cr.execute("SELECT count(*), count(DISTINCT partner_id) FROM mautomate_score_entry")
        entries, scored = cr.fetchone()
        env.invalidate_all()
        start = time.perf_counter()
        env['mautomate.scoring']._recompute_all(auto_commit=True)
        refresh = time.perf_counter() - start
        cr.execute("SELECT count(*) FROM res_partner WHERE mautomate_grade IS NOT NULL")
        graded = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM crm_lead WHERE active")
        leads = cr.fetchone()[0]
        # The rebuild writes only the awards that changed: from an empty ledger, it writes them all.
        cr.execute("DELETE FROM mautomate_score_entry WHERE rule_id = ANY(%s)", [bench_rules(env).ids])
        cr.execute("UPDATE mautomate_score_rule SET needs_rebuild = TRUE WHERE id = ANY(%s)", [bench_rules(env).ids])
        cr.commit()
        # Empty as a new ledger is: the deleted rows reclaimed now, not by an autovacuum that may run during the measure.
        vacuum(registry, ['mautomate_score_entry'])
        env.invalidate_all()
        start = time.perf_counter()
        env['mautomate.scoring']._recompute_all(auto_commit=True)
        empty = time.perf_counter() - start
    floor, floor_contacts = floors[True]
    print(f"full recompute (10 behaviour rules awarded anew, {entries:,} awards to {scored:,} contacts, the unchanged ones"
          f" not written again; {graded:,} contacts and {leads:,} leads refreshed): {full:.1f} s (best of 2)  target < 60 s"
          f"  {verdict(full < 60)}")
    print(f"  SQL floor, the same rules as one GROUP BY over the log ({floor_contacts:,} contacts): {floor:.2f} s;"
          f" ratio {full / floor:.1f}x  target <= 3x  {verdict(full / floor <= 3)}")
    print(f"  (GROUP BY on the event type only, no URL, name or value filter: {floors[False][0]:.2f} s,"
          f" ratio {full / floors[False][0]:.1f}x)")
    print(f"refresh-only recompute (no rule changed: decay, fit, grades, stages): {refresh:.1f} s")
    print(f"full recompute from an empty ledger (all {entries:,} awards written): {empty:.1f} s")


# ------------------------------------------------------------
# 2. Scoring cost per ingested event
# ------------------------------------------------------------

INGESTED = {
    'page view /pricing (a rule, no cap)': lambda partner_id: {'event_type': 'page_view', 'source': 'website',
                                                               'url': 'https://www.example.com/pricing', 'partner_id': partner_id},
    'e-mail opened (a rule capped per period)': lambda partner_id: {'event_type': 'email_open', 'source': 'email',
                                                                    'name': 'Newsletter', 'partner_id': partner_id},
    'form submitted (a rule; moves stages)': lambda partner_id: {'event_type': 'form_submit', 'source': 'website',
                                                                 'name': 'Contact us', 'url': 'https://www.example.com/contactus',
                                                                 'partner_id': partner_id},
}


def ingest_figures(odoo, registry, rounds=6, per_round=30):
    """ Time per event of a known contact: `per_round` requests ingesting one event each, then the refresh
    cron's run that awards them and refreshes their people (requests only queue them); the median over
    rounds, rules on and off, alternating blocks. The contacts are ones that no event hands to sales (already
    marketing qualified, or a fit below the qualifying grade): a hand-off (a lead assigned, an activity, a
    chatter message) is CRM work done once a contact, measured apart by handoff_figures. """
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        rule_ids = bench_rules(env).filtered('active').ids
        cr.execute("""
            SELECT id FROM res_partner
             WHERE email LIKE 'person%%@scoring.example.com'
               AND (mautomate_stage IN ('mql', 'sql', 'opportunity', 'customer') OR left(mautomate_grade, 1) > %s)
          ORDER BY id LIMIT %s
        """, [env['mautomate.scoring']._get_params()['mql_min_grade'], rounds * 2 * len(INGESTED) * (per_round + 1)])
        partner_ids = iter(row[0] for row in cr.fetchall())
    Event_times = {(label, active): [] for label in INGESTED for active in (True, False)}
    try:
        for _round in range(rounds):
            for active in (False, True):
                set_rules_active(registry, rule_ids, active)
                with registry.cursor() as cr:
                    env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
                    Event, Scoring = env['mautomate.event'], env['mautomate.scoring']
                    for label, event in INGESTED.items():
                        Event._ingest([event(next(partner_ids))])  # warm: caches after the switch
                        Scoring._cron_refresh_queue(auto_commit=False)
                        # Requests one by one, then the refresh cron's run over them, as under a steady flow.
                        start = time.perf_counter()
                        for _n in range(per_round):
                            Event._ingest([event(next(partner_ids))])
                        Scoring._cron_refresh_queue(auto_commit=False)
                        Event_times[label, active].append((time.perf_counter() - start) * 1000 / per_round)
                    cr.rollback()
    finally:
        set_rules_active(registry, rule_ids, True)
    worst = 0
    for label in INGESTED:
        with_rules, without = statistics.median(Event_times[label, True]), statistics.median(Event_times[label, False])
        worst = max(worst, with_rules - without)
        print(f"ingest one event, {label}: {with_rules:.2f} ms with 10 rules, {without:.2f} ms without"
              f" (per event: {per_round} requests of contacts no event hands to sales, then the refresh cron;"
              f" median of {len(Event_times[label, True])} rounds):"
              f" scoring adds {with_rules - without:.2f} ms"
              f"  target < 5 ms  {verdict(with_rules - without < 5)}")
    return worst


def handoff_figures(odoo, registry, count=10):
    """ A form submitted by contacts one form away from marketing qualified: scoring, and their hand-off to sales. """
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        params = env['mautomate.scoring']._get_params()
        cr.execute("""
            SELECT id FROM res_partner
             WHERE email LIKE 'person%%@scoring.example.com' AND mautomate_stage IN ('subscriber', 'lead')
               AND left(mautomate_grade, 1) <= %(grade)s AND mautomate_score >= %(score)s - 30 AND mautomate_score < %(score)s
          ORDER BY id LIMIT %(count)s
        """, {'grade': params['mql_min_grade'], 'score': params['mql_score'], 'count': count})
        partner_ids = [row[0] for row in cr.fetchall()]
        cr.execute("SELECT count(*) FROM crm_lead WHERE mautomate_handoff_date IS NOT NULL")
        before = cr.fetchone()[0]
        start = time.perf_counter()
        for partner_id in partner_ids:
            env['mautomate.event']._ingest([INGESTED['form submitted (a rule; moves stages)'](partner_id)])
        env['mautomate.scoring']._cron_refresh_queue(auto_commit=False)
        elapsed = (time.perf_counter() - start) * 1000 / max(len(partner_ids), 1)
        cr.execute("SELECT count(*) FROM crm_lead WHERE mautomate_handoff_date IS NOT NULL")
        handed = cr.fetchone()[0] - before
        cr.rollback()
    print(f"  form submitted by {len(partner_ids)} contacts one form from marketing qualified: {elapsed:.1f} ms per event,"
          f" {handed} leads handed to sales (assigned, a 'Hot lead' activity, a chatter message)")


# ------------------------------------------------------------
# 3. Tracking on a real server, rules on and off
# ------------------------------------------------------------

BEACON_PATHS = ['/pricing', '/blog/post-1', '/contactus', '/product/7', '/jobs/engineer-1']


def known_beacon_rate(base, batches, batch_size, clients, browser_ids):
    """ As tracking.beacon_rate, with the browsers of known contacts and paths the rules match. """
    def post_batches(job):
        vid, count = job
        session = requests.Session()
        for index in range(count):
            body = {'vid': vid, 'events': [{'type': 'page_view', 'name': f'Page {n}', 'ts': int(time.time() * 1000),
                                            'url': f'https://site.example.com{BEACON_PATHS[(index + n) % len(BEACON_PATHS)]}'}
                                           for n in range(batch_size)]}
            response = session.post(f'{base}/mautomate/track', data=json.dumps(body), headers={'Content-Type': 'text/plain'})
            assert response.status_code == 202 and response.json()['stored'] == batch_size, response.text
    per_client = batches // clients
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post_batches, [(browser_ids[n], per_client) for n in range(clients)]))
    return per_client * clients * batch_size / (time.perf_counter() - start)


def known_page_times(base, path, rounds, logfile, browser_ids):
    """ As tracking.page_times, the tracked browser being a different known contact at each request. """
    tracked, untracked = requests.Session(), requests.Session()
    for session in (tracked, untracked):
        session.headers['User-Agent'] = tracking.BROWSER_USER_AGENT
    untracked.headers['DNT'] = '1'

    def request_round(index):
        for session in tracking.paired(index, untracked, tracked):
            cookies = {'mautomate_vid': browser_ids[index]} if session is tracked else None
            assert session.get(base + path, cookies=cookies).status_code == 200
    # Untimed rounds first, as in tracking.page_times, each with a browser of its own too.
    for index in range(rounds, rounds + tracking.WARMUP_ROUNDS):
        request_round(index)
    with open(logfile) as log:
        log.seek(0, os.SEEK_END)
        for index in range(rounds):
            request_round(index)
        time.sleep(1)
        return tracking.paired_times(path, rounds, log.read())


def server_figures(odoo, registry, args, batches=200, rounds=1000):
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        rules = bench_rules(env).filtered('active')
        contact_rule = rules.filtered(lambda rule: rule.url_pattern == '/contactus*')
        cr.execute("SELECT MAX(id) FROM mautomate_event")
        last_event = cr.fetchone()[0]
        # Browsers of known contacts not yet capped on the contact page: each page view below scores.
        cr.execute("""
            SELECT md5('browser ' || substr(p.email, 7, strpos(p.email, '@') - 7)) FROM res_partner p
             WHERE p.email LIKE 'person%%@scoring.example.com' AND substr(p.email, 7, strpos(p.email, '@') - 7)::int <= %s
               AND NOT EXISTS (SELECT 1 FROM mautomate_score_entry x WHERE x.partner_id = p.id AND x.rule_id = %s)
             ORDER BY p.id DESC LIMIT %s
        """, [KNOWN, contact_rule.id, 16 + 2 * (rounds + tracking.WARMUP_ROUNDS)])
        browsers = [row[0] for row in cr.fetchall()]
    assert len(browsers) == 16 + 2 * (rounds + tracking.WARMUP_ROUNDS), len(browsers)
    logfile = tempfile.mktemp(suffix='.log')
    tracking.beacon_limit_off(args.db, True)
    process, base = tracking.start_odoo(args.odoo_cmd, args.db, args.addons_path, tracking.free_port(), logfile)
    rates, pages = {True: [], False: []}, {}
    try:
        for index, active in enumerate((False, True, False, True)):
            set_rules_active(registry, rules.ids, active)
            rates[active].append(known_beacon_rate(base, batches, 50, 4, browsers[4 * index:4 * index + 4]))
        # The beacons left 80,000 events and their queue rows: vacuumed, as autovacuum would, before pages are timed.
        vacuum(registry, ('mautomate_event', 'mautomate_score_queue', 'ir_cron_trigger'))
        for active in (True, False):
            set_rules_active(registry, rules.ids, active)
            offset = 16 + (0 if active else rounds + tracking.WARMUP_ROUNDS)
            pages[active] = known_page_times(base, '/contactus', rounds, logfile,
                                             browsers[offset:offset + rounds + tracking.WARMUP_ROUNDS])
    finally:
        set_rules_active(registry, rules.ids, True)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        tracking.beacon_limit_off(args.db, False)
    with registry.cursor() as cr:
        # The server ran without cron workers: award and refresh what its requests queued, as the refresh cron would.
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        cr.execute("SELECT count(*) FROM mautomate_score_queue")
        queued = cr.fetchone()[0]
        start = time.perf_counter()
        env['mautomate.scoring']._cron_refresh_queue(max_batches=1000)
        drained = time.perf_counter() - start
        cr.execute("SELECT count(*) FROM mautomate_score_entry WHERE rule_id = %s AND event_id > %s", [contact_rule.id, last_event])
        awarded = cr.fetchone()[0]
        # The benchmark's own events leave the log (their awards with them), so that the next run starts alike.
        cr.execute("DELETE FROM mautomate_score_entry WHERE event_id > %s", [last_event])
        cr.execute("DELETE FROM mautomate_event WHERE id > %s", [last_event])
        cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s",
                   [env.ref('mautomate_marketing.ir_cron_mautomate_score_refresh').id])
    with_rules, without = sum(rates[True]) / len(rates[True]), sum(rates[False]) / len(rates[False])
    print(f"beacon ingestion, known contacts' browsers: {with_rules:,.0f} events/s with 10 rules, {without:,.0f} without"
          f" = {with_rules / without:.2f}x ({2 * batches} batches of 50 each, 4 clients, 2 workers)"
          f"  target >= 0.8x  {verdict(with_rules / without >= 0.8)}")
    tracked, untracked, (low, high), tracked_queries, untracked_queries = pages[True]
    print(f"page view /contactus of a known contact, scored by a rule ({awarded} awards made): tracked {tracked * 1000:.1f} ms"
          f" with 10 rules / untracked {untracked * 1000:.1f} ms = {tracked / untracked:.3f}"
          f" (95 % {low:.3f}-{high:.3f}; trimmed mean of {rounds};"
          f" {tracked_queries:.0f} / {untracked_queries:.0f} queries)  target <= 1.10  {verdict(tracked / untracked <= 1.10)}")
    tracked, untracked, _interval, tracked_queries, untracked_queries = pages[False]
    print(f"  same without rules: tracked {tracked * 1000:.1f} ms / untracked {untracked * 1000:.1f} ms"
          f" = {tracked / untracked:.3f} ({tracked_queries:.0f} / {untracked_queries:.0f} queries)")
    print(f"  refresh cron afterwards: {queued:,} queued events and people awarded and refreshed in {drained:.1f} s")


# ------------------------------------------------------------
# 4. Predictive probability
# ------------------------------------------------------------

def predictive_figures(odoo, registry):
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        Model = env.get('mautomate.predictive.model')
        if Model is None or not hasattr(Model, '_benchmark'):
            print("predictive: not available")
            return
        cr.execute("SELECT count(*) FILTER (WHERE probability >= 100), count(*) FILTER (WHERE NOT active AND probability = 0)"
                   " FROM crm_lead")
        won, lost = cr.fetchone()
        seconds, auc, odoo_auc = Model._benchmark()
        cr.rollback()  # the training and its predictions: the next run trains on the same leads
    print(f"predictive training on {won:,} won and {lost:,} lost leads: {seconds:.1f} s;"
          f" AUC {auc:.3f} vs Odoo's automated probability {odoo_auc:.3f} on the same held-out leads"
          f"  target: above Odoo's  {verdict(auc > odoo_auc)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--db', required=True)
    parser.add_argument('--addons-path', required=True)
    parser.add_argument('--only', choices=['recompute', 'ingest', 'server', 'predictive'], action='append',
                        help="run only these parts (default: all)")
    parser.add_argument('odoo_cmd', nargs='+', help="the command that runs odoo-bin")
    args = parser.parse_args()
    odoo_root = next((os.path.dirname(arg) for arg in args.odoo_cmd if arg.endswith('odoo-bin')), None)
    parts = args.only or ['recompute', 'ingest', 'server', 'predictive']

    odoo, registry = scale.connect(args.db, args.addons_path, odoo_root)
    build(odoo, registry)
    settle(odoo, registry)
    print(f"{EVENTS:,} events, {CONTACTS:,} contacts, {LEADS:,} leads; {len(BEHAVIOUR_RULES)} behaviour and {len(FIT_RULES)} fit rules",
          flush=True)
    if 'recompute' in parts:
        recompute_figures(odoo, registry)
    if 'ingest' in parts:
        ingest_figures(odoo, registry)
        handoff_figures(odoo, registry)
    if 'server' in parts:
        server_figures(odoo, registry, args)
    if 'predictive' in parts:
        predictive_figures(odoo, registry)


if __name__ == '__main__':
    main()
