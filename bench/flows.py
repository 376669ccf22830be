""" Flows benchmark: the automation engine's throughput, its e-mail step next to Odoo's mass mailing and to
OCA's automation_oca, the latency from an event to the first step, and the engine's memory.

Run with bench/flows.sh, which finds Odoo, fetches automation_oca 18.0 from PyPI into a cache outside
the repository and installs both modules on their own database. The first run builds, in SQL,
100,000 contacts; every run then removes what the previous one made (flows, mails, traces, OCA's
records) and measures on the same contacts. Targets:

* non-mail steps (tags, condition, score points) >= 1,000 steps/s through the engine's cron batches;
* e-mail steps queued (template rendered per contact, mail.mail and mailing.trace) >= 0.8x the rate
  of Odoo's mass mailing sending the same body to the same contacts (up to the mail queue, no SMTP);
* the same flow (an e-mail, then a tag) >= 5x faster than automation_oca's cron running it;
* an API event to its flow's first step done, on a real server with a cron worker: < 5 s.

automation_oca runs one record at a time and commits per mail: it gets a sample of the contacts
(--oca-contacts) and the comparison is between rates (steps per second). Times within one run compare
with each other; other processes on the machine move them all.
"""
import argparse
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # bench/scale.py: connect to a database through Odoo's registry
import tracking  # bench/tracking.py: free ports, a server

CONTACTS = 100_000
PARTICIPANTS = CONTACTS     # --participants: fewer for a quick trial
MARKER = 'mautomate_marketing.bench_flows'
PREFIX = 'Bench flows: '
EMAIL_LIKE = 'flow%@flows.example.com'
LATENCY_EVENT = 'Bench flows latency'
SUBJECT = 'News for {{ object.name }}'
BODY = ('<p>Hello <t t-out="object.name"/>,</p><p>our spring offer is out: '
        '<a href="https://www.example.com/offer">see it</a>.</p>')
EMAIL_FROM = 'news@example.com'

BUILD_SQL = """
SET LOCAL session_replication_role = replica;  -- the rows are consistent by construction: skip FK triggers
CREATE TEMP TABLE bench_base ON COMMIT DROP AS SELECT
    (SELECT COALESCE(MAX(id), 0) FROM res_partner) AS p0,
    ARRAY(SELECT id FROM res_country WHERE code IN ('BE', 'SE') ORDER BY code) AS countries,
    now() at time zone 'UTC' AS now;
INSERT INTO res_partner (id, name, complete_name, email, email_normalized, commercial_partner_id, country_id, type, active,
                         is_company, partner_share, lang, create_uid, write_uid, create_date, write_date)
SELECT p0 + c, 'Flow person ' || c, 'Flow person ' || c, 'flow' || c || '@flows.example.com',
       'flow' || c || '@flows.example.com', p0 + c, countries[1 + c %% 2], 'contact', TRUE, FALSE, TRUE, 'en_US', 1, 1,
       now - interval '100 days', now - interval '100 days'
  FROM bench_base, generate_series(1, %(contacts)s) c;
SELECT setval('res_partner_id_seq', (SELECT MAX(id) FROM res_partner));
INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
SELECT %(marker)s, %(contacts)s, 1, 1, now, now FROM bench_base;
"""

# What an earlier run made, removed in SQL. The mails first, without foreign-key triggers: every table that refers
# to mail.message would be scanned for each of the 200,000 messages otherwise; nothing but these tables holds them.
RESET_MAILS_SQL = """
CREATE TEMP TABLE bench_mailings ON COMMIT DROP AS
    SELECT id FROM mailing_mailing WHERE subject = %(subject)s
     UNION SELECT s.mailing_id FROM mautomate_flow_step s JOIN mautomate_flow f ON f.id = s.flow_id
     WHERE f.name->>'en_US' LIKE %(prefix)s AND s.mailing_id IS NOT NULL;
CREATE TEMP TABLE bench_mails ON COMMIT DROP AS
    SELECT id, mail_message_id FROM mail_mail WHERE mailing_id IN (SELECT id FROM bench_mailings) OR id IN %(oca_mails)s;
SET session_replication_role = replica;
DELETE FROM mailing_trace WHERE mass_mailing_id IN (SELECT id FROM bench_mailings);
DELETE FROM mail_mail_res_partner_rel WHERE mail_mail_id IN (SELECT id FROM bench_mails);
DELETE FROM mail_message_res_partner_rel WHERE mail_message_id IN (SELECT mail_message_id FROM bench_mails);
UPDATE mautomate_flow_trace SET mail_mail_id = NULL WHERE mail_mail_id IN (SELECT id FROM bench_mails);
DELETE FROM mail_mail WHERE id IN (SELECT id FROM bench_mails);
DELETE FROM mail_message WHERE id IN (SELECT mail_message_id FROM bench_mails);
SET session_replication_role = DEFAULT;
"""
OCA_MAILS_SQL = """
SELECT m.id FROM mail_mail m JOIN automation_record_step s ON s.id = m.automation_record_step_id
  JOIN automation_configuration c ON c.id = s.configuration_id WHERE c.name LIKE %(prefix)s
"""
RESET_SQL = """
DELETE FROM mautomate_flow WHERE name->>'en_US' LIKE %(prefix)s;
DELETE FROM mailing_mailing WHERE id IN (SELECT id FROM bench_mailings);
DELETE FROM mautomate_score_entry WHERE rule_id IS NULL AND partner_id IN (SELECT id FROM res_partner WHERE email LIKE %(email)s);
DELETE FROM mautomate_event WHERE name = %(latency_event)s;
DELETE FROM mautomate_api_key WHERE name LIKE %(prefix)s;
DELETE FROM res_partner_category WHERE name->>'en_US' LIKE %(prefix)s;
DELETE FROM ir_cron_trigger WHERE cron_id IN (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron'
                                               AND module IN ('mautomate_marketing', 'automation_oca', 'mass_mailing'));
"""
RESET_OCA_SQL = """
DELETE FROM automation_record_step WHERE record_id IN (SELECT r.id FROM automation_record r JOIN automation_configuration c
                                                         ON c.id = r.configuration_id WHERE c.name LIKE %(prefix)s);
DELETE FROM automation_record WHERE configuration_id IN (SELECT id FROM automation_configuration WHERE name LIKE %(prefix)s);
DELETE FROM automation_configuration_step WHERE configuration_id IN (SELECT id FROM automation_configuration
                                                                     WHERE name LIKE %(prefix)s);
DELETE FROM automation_configuration WHERE name LIKE %(prefix)s;
DELETE FROM ir_act_server WHERE name->>'en_US' LIKE %(prefix)s;
"""


def verdict(ok):
    return 'PASS' if ok else 'MISS'


def env_of(odoo, cr):
    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})


def build(registry):
    with registry.cursor() as cr:
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = %s", [MARKER])
        if (cr.fetchone() or [None])[0] == str(CONTACTS):
            return
        start = time.perf_counter()
        cr.execute(BUILD_SQL, {'contacts': CONTACTS, 'marker': MARKER})
        print(f"built {CONTACTS:,} contacts in {time.perf_counter() - start:.0f} s", flush=True)


def reset(odoo, registry, oca):
    """ Remove what an earlier run made, then VACUUM what it deleted. """
    with registry.cursor() as cr:
        params = {'prefix': PREFIX + '%', 'subject': SUBJECT, 'email': EMAIL_LIKE, 'latency_event': LATENCY_EVENT}
        oca_mails = [0]
        if oca:
            cr.execute(OCA_MAILS_SQL, params)
            oca_mails += [row[0] for row in cr.fetchall()]
        cr.execute(RESET_MAILS_SQL, {**params, 'oca_mails': tuple(oca_mails)})
        if oca:
            cr.execute(RESET_OCA_SQL, params)
        cr.execute(RESET_SQL, params)
        cr.execute("DELETE FROM mail_template WHERE name->>'en_US' LIKE %s", [params['prefix']])
        cr.execute("DELETE FROM mautomate_score_queue")
    connection = odoo.sql_db.db_connect(registry.db_name).cursor()
    connection._cnx.autocommit = True
    for table in ('mail_mail', 'mail_message', 'mailing_trace', 'mautomate_flow_trace', 'mautomate_flow_participant',
                  'res_partner_res_partner_category_rel', 'mautomate_score_entry', 'res_partner'):
        connection.execute(f'VACUUM ANALYZE {table}')
    if oca:
        connection.execute('VACUUM ANALYZE automation_record_step')
        connection.execute('VACUUM ANALYZE automation_record')
    connection.close()


def contact_ids(env, limit=None):
    env.cr.execute("SELECT id FROM res_partner WHERE email LIKE %s ORDER BY id LIMIT %s", [EMAIL_LIKE, limit or PARTICIPANTS])
    return [row[0] for row in env.cr.fetchall()]


def make_template(env):
    return env['mail.template'].create({
        'name': PREFIX + 'news', 'model_id': env['ir.model']._get_id('res.partner'), 'subject': SUBJECT,
        'body_html': BODY, 'email_from': EMAIL_FROM, 'email_to': '{{ object.email_formatted }}', 'auto_delete': False,
    })


def make_flow(env, name, steps, trigger=None):
    """ A flow whose steps are (key, vals, parent keys): a small graph as in tests/test_flows.py. """
    flow = env['mautomate.flow'].create({
        'name': PREFIX + name,
        'trigger_ids': [(0, 0, trigger or {'trigger_type': 'manual'})],
    })
    made = {}
    for key, vals, parents in steps:
        made[key] = env['mautomate.flow.step'].create({
            'flow_id': flow.id, 'name': key, 'delay': 0, **vals,
            'parent_ids': [(6, 0, [made[parent].id for parent in parents])],
        })
    flow.action_start()
    return flow, made


def rss_mb():
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(env, phases=None):
    """ What the engine's cron does until no step is due: its batches, each committed. `phases` maps a step
    to the name of the phase that ends when that step has nothing left due; returns {phase: seconds} and the
    batch count. The checks between batches are not timed. """
    Engine = env['mautomate.flow.engine']
    elapsed, batches, phase_times = 0.0, 0, {}
    cpu_start = process_cpu()
    pending = dict(phases or {})
    while True:
        start = time.perf_counter()
        done = Engine._cron_process()
        elapsed += time.perf_counter() - start
        if not done:
            break
        batches += 1
        for step, name in list(pending.items()):
            env.cr.execute("SELECT 1 FROM mautomate_flow_trace WHERE step_id = %s AND state IN ('scheduled', 'waiting') LIMIT 1",
                           [step.id])
            if not env.cr.fetchone():
                phase_times[name] = elapsed - sum(phase_times.values())
                del pending[step]
    phase_times['total'] = elapsed
    phase_times['cpu'] = process_cpu() - cpu_start
    return phase_times, batches


def process_cpu():
    """ CPU seconds of this process: the rest of the engine's time is PostgreSQL's (or waiting for a core). """
    times = os.times()
    return times.user + times.system


def count_done(env, flow):
    env.cr.execute("""SELECT s.kind, count(*) FROM mautomate_flow_trace t JOIN mautomate_flow_step s ON s.id = t.step_id
                       WHERE t.flow_id = %s AND t.state = 'done' GROUP BY s.kind""", [flow.id])
    return dict(env.cr.fetchall())


def enroll(env, flow, partner_ids):
    start = time.perf_counter()
    participants = flow._enroll(dict.fromkeys(partner_ids))
    env.cr.commit()
    return len(participants), time.perf_counter() - start


# ------------------------------------------------------------
# 1. Our engine
# ------------------------------------------------------------

def ours_figures(odoo, registry):
    """ A non-mail flow (tag, condition, score points or tag) and a mail flow (e-mail, then tag) over every contact. """
    results = {}
    with registry.cursor() as cr:
        env = env_of(odoo, cr)
        partner_ids = contact_ids(env)
        tags = env['res.partner.category'].create([{'name': PREFIX + name} for name in ('entered', 'Sweden', 'mailed')])
        template = make_template(env)
        plain, _steps = make_flow(env, 'no mail', [
            ('tag', {'kind': 'tags', 'tag_add_ids': [(6, 0, tags[0].ids)]}, []),
            ('belgian?', {'kind': 'condition', 'condition_domain': "[('country_id.code', '=', 'BE')]"}, ['tag']),
            ('points', {'kind': 'score', 'score_points': 5, 'branch': 'yes'}, ['belgian?']),
            ('tag Sweden', {'kind': 'tags', 'tag_add_ids': [(6, 0, tags[1].ids)], 'branch': 'no'}, ['belgian?']),
        ])
        mail, mail_steps = make_flow(env, 'mail', [
            ('mail', {'kind': 'email', 'mail_template_id': template.id}, []),
            ('tag mailed', {'kind': 'tags', 'tag_add_ids': [(6, 0, tags[2].ids)]}, ['mail']),
        ])
        cr.commit()

        rss_before, max_before = rss_mb(), max_rss_mb()
        enrolled, enroll_time = enroll(env, plain, partner_ids)
        times, batches = run_engine(env)
        done = count_done(env, plain)
        steps = sum(done.values())
        results['plain'] = steps / times['total']
        print(f"enrolment of {enrolled:,} contacts in a flow (audience, re-entry, first steps scheduled):"
              f" {enroll_time:.1f} s = {enrolled / enroll_time:,.0f} contacts/s")
        print(f"non-mail steps: {steps:,} ({', '.join(f'{count:,} {kind}' for kind, count in sorted(done.items()))})"
              f" in {times['total']:.1f} s ({times['cpu']:.0f} s of it Python), {batches} batches = {results['plain']:,.0f} steps/s"
              f"  target >= 1,000/s  {verdict(results['plain'] >= 1000)}", flush=True)

        enrolled, enroll_time = enroll(env, mail, partner_ids)
        times, batches = run_engine(env, {mail_steps['mail']: 'mail'})
        done = count_done(env, mail)
        rss_after, max_after = rss_mb(), max_rss_mb()
        cr.execute("SELECT count(*) FROM mail_mail WHERE mailing_id = %s AND state = 'outgoing'", [mail_steps['mail'].mailing_id.id])
        queued = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM mailing_trace WHERE mass_mailing_id = %s", [mail_steps['mail'].mailing_id.id])
        traced = cr.fetchone()[0]
        assert done.get('email') == queued == traced == enrolled, (done, queued, traced, enrolled)
        results['mail'] = done['email'] / times['mail']
        results['mail_tag'] = done['tags'] / (times['total'] - times['mail'])
        results['mail_flow'] = (done['email'] + done['tags']) / times['total']
        print(f"e-mail steps: {queued:,} mails queued with their mailing traces in {times['mail']:.1f} s"
              f" = {results['mail']:,.0f} mails/s; then {done['tags']:,} tag steps in {times['total'] - times['mail']:.1f} s"
              f" = {results['mail_tag']:,.0f} steps/s ({batches} batches in all, {times['cpu']:.0f} s of {times['total']:.0f} s Python)",
              flush=True)
        print(f"engine memory over both flows ({len(partner_ids):,} participants each, cron batches of 500):"
              f" peak RSS {max_after:.0f} MB, +{max_after - max_before:.0f} MB over the {max_before:.0f} MB before"
              f" (RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after)", flush=True)
        # Stopped: a server started later must not run them.
        (plain | mail).action_stop()
        cr.commit()
    return results


# ------------------------------------------------------------
# 2. Odoo's mass mailing: the same body to the same contacts
# ------------------------------------------------------------

def mass_mailing_figures(odoo, registry, ours):
    with registry.cursor() as cr:
        env = env_of(odoo, cr)
        partner_ids = contact_ids(env)
        mailing = env['mailing.mailing'].create({
            'subject': SUBJECT, 'body_arch': BODY, 'body_html': BODY, 'email_from': EMAIL_FROM,
            'mailing_model_id': env['ir.model']._get_id('res.partner'),
            'mailing_domain': repr([('email', '=like', EMAIL_LIKE), ('id', '<=', max(partner_ids))]), 'keep_archives': True,
        })
        cr.commit()
        start = time.perf_counter()
        mailing.action_send_mail()  # commits every mail.batch_size mails, as its cron does
        cr.commit()
        elapsed = time.perf_counter() - start
        cr.execute("SELECT count(*) FROM mail_mail WHERE mailing_id = %s AND state = 'outgoing'", [mailing.id])
        queued = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM mailing_trace WHERE mass_mailing_id = %s", [mailing.id])
        traced = cr.fetchone()[0]
    assert queued == traced == len(partner_ids), (queued, traced)
    rate = queued / elapsed
    print(f"Odoo's mass mailing, same body and contacts: {queued:,} mails queued with their traces in {elapsed:.1f} s"
          f" = {rate:,.0f} mails/s; ours / Odoo's = {ours['mail'] / rate:.2f}x  target >= 0.8x"
          f"  {verdict(ours['mail'] / rate >= 0.8)}", flush=True)


# ------------------------------------------------------------
# 3. OCA's automation_oca: the same flow on a sample of the contacts
# ------------------------------------------------------------

def oca_figures(odoo, registry, ours, sample, reason):
    if reason:
        print(f"OCA automation_oca comparison: unavailable ({reason})")
        return
    with registry.cursor() as cr:
        env = env_of(odoo, cr)
        if 'automation.configuration' not in env:
            print("OCA automation_oca comparison: unavailable (automation_oca is not installed on this database)")
            return
        partner_ids = contact_ids(env, sample)
        tag = env['res.partner.category'].create({'name': PREFIX + 'OCA mailed'})
        template = make_template(env)
        action = env['ir.actions.server'].create({
            'name': PREFIX + 'tag', 'model_id': env['ir.model']._get_id('res.partner'), 'state': 'object_write',
            'update_path': 'category_id', 'update_m2m_operation': 'add', 'evaluation_type': 'value', 'value': str(tag.id),
        })
        configuration = env['automation.configuration'].create({
            'name': PREFIX + 'OCA mail', 'model_id': env['ir.model']._get_id('res.partner'), 'is_periodic': False,
            'editable_domain': repr([('email', '=like', EMAIL_LIKE), ('id', '<=', max(partner_ids))]),
        })
        # The mail step waits an hour, so that creating the records runs none of it (see below).
        mail_step = env['automation.configuration.step'].create({
            'name': 'mail', 'configuration_id': configuration.id, 'step_type': 'mail', 'mail_template_id': template.id,
            'trigger_type': 'start', 'trigger_interval': 1, 'trigger_interval_type': 'hours',
        })
        env['automation.configuration.step'].create({
            'name': 'tag mailed', 'configuration_id': configuration.id, 'parent_id': mail_step.id, 'step_type': 'action',
            'server_action_id': action.id, 'trigger_type': 'after_step', 'trigger_interval': 0,
        })
        configuration.start_automation()
        cr.commit()
        start = time.perf_counter()
        configuration.run_automation()
        cr.commit()
        enroll_time = time.perf_counter() - start
        # Due now: the timed part is the cron of the steps alone.
        cr.execute("UPDATE automation_record_step SET scheduled_date = (now() at time zone 'UTC') - interval '1 second'"
                   " WHERE configuration_id = %s", [configuration.id])
        cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [env.ref('automation_oca.cron_step_execute').id])
        cr.commit()
        Step = env['automation.record.step']
        passes = []
        while True:
            env.invalidate_all()
            cr.execute("SELECT count(*) FROM automation_record_step WHERE configuration_id = %s AND state = 'scheduled'"
                       " AND scheduled_date <= now() at time zone 'UTC'", [configuration.id])
            if not cr.fetchone()[0]:
                break
            start = time.perf_counter()
            Step._cron_automation_steps()
            cr.commit()
            passes.append(time.perf_counter() - start)
        cr.execute("SELECT step_type, state, count(*) FROM automation_record_step WHERE configuration_id = %s"
                   " GROUP BY step_type, state", [configuration.id])
        states = {(kind, state): count for kind, state, count in cr.fetchall()}
        cr.execute("""SELECT count(*) FROM mail_mail m JOIN automation_record_step s ON s.id = m.automation_record_step_id
                       WHERE s.configuration_id = %s""", [configuration.id])
        queued = cr.fetchone()[0]
    mails, actions = states.get(('mail', 'done'), 0), states.get(('action', 'done'), 0)
    assert mails == actions == queued == len(partner_ids), (states, queued)
    total = sum(passes)
    oca_flow = (mails + actions) / total
    print(f"OCA automation_oca 18.0, the same flow (e-mail, then a tag by server action) on {len(partner_ids):,} of the"
          f" contacts: records created in {enroll_time:.1f} s; cron passes {', '.join(f'{t:.1f} s' for t in passes)}:"
          f" {mails:,} mails queued + {actions:,} tags = {oca_flow:,.1f} steps/s"
          f" (first pass, mails: {mails / passes[0]:,.1f}/s)")
    print(f"  ours / OCA, the whole flow: {ours['mail_flow']:,.0f} / {oca_flow:,.1f} steps/s = {ours['mail_flow'] / oca_flow:.1f}x"
          f"  target >= 5x  {verdict(ours['mail_flow'] / oca_flow >= 5)};"
          f" e-mail steps {ours['mail'] / (mails / passes[0]):.1f}x", flush=True)


# ------------------------------------------------------------
# 4. Event to first step on a real server
# ------------------------------------------------------------

def latency_figures(odoo, registry, args, rounds=5):
    """ Seconds from posting an API event (the client's clock) to its flow's first step done, seen in the
    database: ingest, enrolment, the cron trigger, the cron worker's wake-up and batch. """
    with registry.cursor() as cr:
        env = env_of(odoo, cr)
        tag = env['res.partner.category'].create({'name': PREFIX + 'latency'})
        flow, steps = make_flow(env, 'latency', [('tag', {'kind': 'tags', 'tag_add_ids': [(6, 0, tag.ids)]}, [])],
                                trigger={'trigger_type': 'event', 'event_type': 'custom', 'name_pattern': LATENCY_EVENT})
        key = env['mautomate.api.key'].create({'name': PREFIX + 'latency'})
        token = key.action_generate_token()['context']['default_token']
        partner_ids = contact_ids(env, rounds + 1)
        cr.commit()
    logfile = tempfile.mktemp(suffix='.log')
    process, base = tracking.start_odoo(args.odoo_cmd, args.db, args.addons_path, tracking.free_port(), logfile, cron_threads=1)
    latencies = []
    try:
        time.sleep(5)  # the cron worker's first round over the database's due jobs
        session = requests.Session()
        connection = odoo.sql_db.db_connect(registry.db_name).cursor()
        connection._cnx.autocommit = True
        for partner_id in partner_ids:
            body = {'event_type': 'custom', 'name': LATENCY_EVENT, 'partner_id': partner_id}
            start = time.perf_counter()
            response = session.post(f'{base}/mautomate/api/v1/events', data=json.dumps(body),
                                    headers={'Authorization': f'Bearer {token}', 'Content-Type': 'application/json'})
            assert response.status_code == 201, response.text
            while time.perf_counter() - start < 120:
                connection.execute("""SELECT 1 FROM mautomate_flow_trace t JOIN mautomate_flow_participant p
                                        ON p.id = t.participant_id
                                       WHERE t.step_id = %s AND p.partner_id = %s AND t.state = 'done'""",
                                   [steps['tag'].id, partner_id])
                if connection.fetchone():
                    break
                time.sleep(0.01)
            latencies.append(time.perf_counter() - start)
            time.sleep(1)
        connection.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    with registry.cursor() as cr:
        env_of(odoo, cr)['mautomate.flow'].browse(flow.id).action_stop()
    # The first event after the start waits for the cron worker to load the registry: a long-lived server has it.
    warm_up, latencies = latencies[0], latencies[1:]
    worst = max(latencies)
    print(f"API event to the flow's first step done, server with 2 workers and a cron worker: median"
          f" {statistics.median(latencies):.2f} s, max {worst:.2f} s over {rounds} events"
          f" ({', '.join(f'{latency:.2f}' for latency in latencies)})"
          f"  target < 5 s  {verdict(worst < 5)}; the first event after the server's start: {warm_up:.2f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--db', required=True)
    parser.add_argument('--addons-path', required=True)
    parser.add_argument('--participants', type=int, default=CONTACTS, help="contacts enrolled (a quick trial: fewer)")
    parser.add_argument('--oca-contacts', type=int, default=2000, help="contacts of automation_oca's run")
    parser.add_argument('--oca-unavailable', default='', help="why automation_oca could not be installed (printed)")
    parser.add_argument('--only', choices=['ours', 'mass_mailing', 'oca', 'latency'], action='append',
                        help="run only these parts (default: all; mass_mailing and oca run ours first)")
    parser.add_argument('odoo_cmd', nargs='+', help="the command that runs odoo-bin")
    args = parser.parse_args()
    odoo_root = next((os.path.dirname(arg) for arg in args.odoo_cmd if arg.endswith('odoo-bin')), None)
    global PARTICIPANTS
    PARTICIPANTS = args.participants
    parts = args.only or ['ours', 'mass_mailing', 'oca', 'latency']

    odoo, registry = scale.connect(args.db, args.addons_path, odoo_root)
    oca = 'automation.configuration' in registry
    build(registry)
    reset(odoo, registry, oca)
    print(f"{CONTACTS:,} contacts, {PARTICIPANTS:,} of them enrolled", flush=True)
    ours = None
    if {'ours', 'mass_mailing', 'oca'} & set(parts):
        ours = ours_figures(odoo, registry)
    if 'mass_mailing' in parts:
        mass_mailing_figures(odoo, registry, ours)
    if 'oca' in parts:
        reason = args.oca_unavailable or (None if oca else "automation_oca is not installed on this database")
        oca_figures(odoo, registry, ours, args.oca_contacts, reason)
    if 'latency' in parts:
        # Without the mails queued above: the server's cron worker would try to send them first.
        reset(odoo, registry, oca)
        latency_figures(odoo, registry, args)


if __name__ == '__main__':
    main()
