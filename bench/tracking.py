""" Tracking benchmark: beacon ingestion rate, cost of tracking a page view, identity merge time.

Run with bench/run.sh, which finds Odoo and prepares the database. Targets (issue #2):
beacon ingestion >= 2,000 events/s in batches of 50; tracked / untracked page time <= 1.05 (issue #5);
attaching 10,000 anonymous events to a contact < 0.5 s.

Page times are server times from Odoo's own request log (SQL time + the rest of the request).
"Untracked" is the same request from a browser that sends Do-Not-Track: this module logs nothing
for it, and Odoo itself treats it like any other (its own visitor tracking still runs).
"""
import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

WARMUP_ROUNDS = 30
BROWSER_USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def start_odoo(odoo_cmd, db, addons_path, port, logfile, cron_threads=0):
    """ An Odoo server with 2 workers (and `cron_threads` cron workers) on `db`, answering and warmed: (process, base URL). """
    process = subprocess.Popen(
        [*odoo_cmd, '-d', db, '--addons-path', addons_path, '--http-port', str(port), '--workers', '2',
         '--max-cron-threads', str(cron_threads), '--db-filter', f'^{db}$', '--log-level', 'info', '--log-handler', 'werkzeug:INFO',
         '--logfile', logfile, '--limit-time-real', '600'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if requests.get(f'{base}/web/health', timeout=2).status_code == 200:
                requests.get(f'{base}/', headers={'User-Agent': BROWSER_USER_AGENT}, timeout=60)  # warm the workers
                return process, base
        except requests.RequestException:
            pass
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    sys.exit("Odoo did not start within 180 s")


def beacon_rate(base, batches, batch_size, clients):
    """ Events stored per second by /mautomate/track, `clients` browsers posting at once. """
    def post_batches(count):
        session = requests.Session()
        vid = uuid.uuid4().hex
        for index in range(count):
            body = {'vid': vid, 'events': [{'type': 'page_view', 'url': f'https://site.example.com/page/{index}/{n}',
                                            'name': f'Page {n}', 'ts': int(time.time() * 1000)} for n in range(batch_size)]}
            response = session.post(f'{base}/mautomate/track', data=json.dumps(body), headers={'Content-Type': 'text/plain'})
            assert response.status_code == 202 and response.json()['stored'] == batch_size, response.text
    per_client = batches // clients
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post_batches, [per_client] * clients))
    elapsed = time.perf_counter() - start
    return per_client * clients * batch_size / elapsed


def page_times(base, path, rounds, logfile):
    """ Server time of a page, tracked and untracked, requested in pairs one at a time. """
    tracked, untracked = requests.Session(), requests.Session()
    for session in (tracked, untracked):
        session.headers['User-Agent'] = BROWSER_USER_AGENT
    untracked.headers['DNT'] = '1'
    # Untimed rounds first: the first requests of a new browser and a fresh page run slower, whichever the side.
    for index in range(WARMUP_ROUNDS):
        for session in paired(index, untracked, tracked):
            assert session.get(base + path).status_code == 200
    with open(logfile) as log:
        log.seek(0, os.SEEK_END)
        for index in range(rounds):
            for session in paired(index, untracked, tracked):
                assert session.get(base + path).status_code == 200
        time.sleep(1)
        lines = log.read()
    assert tracked.cookies.get('mautomate_vid') and not untracked.cookies.get('mautomate_vid')
    return paired_times(path, rounds, lines)


def paired(index, untracked, tracked):
    """ A round's two requests, each first in every other round: what a request leaves running (its worker's
    cleanup) slows the next one, whichever it is. """
    return (untracked, tracked) if index % 2 == 0 else (tracked, untracked)


def paired_times(path, rounds, log):
    """ (tracked time, untracked time, 95 % interval of their ratio, tracked queries, untracked queries) of
    `rounds` paired requests of `path` in the log: times are trimmed means of server times, queries medians. """
    # werkzeug's line ends with: <query count> <query time> <remaining time>
    lines = re.findall(rf'"GET {re.escape(path)} HTTP/1.1" 200 - (\d+) ([\d.]+) ([\d.]+)', log)
    assert len(lines) == 2 * rounds, len(lines)
    # The swap that ordered each round's requests puts its log lines back in (untracked, tracked) order.
    pairs = [paired(index, first, second) for index, (first, second) in enumerate(zip(lines[0::2], lines[1::2], strict=True))]
    times = [tuple(float(query_time) + float(other_time) for _count, query_time, other_time in pair) for pair in pairs]
    queries = [[int(count) for count, _query_time, _other_time in side] for side in zip(*pairs, strict=True)]
    tracked, untracked = trimmed_mean([pair[1] for pair in times]), trimmed_mean([pair[0] for pair in times])
    return tracked, untracked, ratio_interval(times), statistics.median(queries[1]), statistics.median(queries[0])


def ratio_interval(times, resamples=400):
    """ 95 % bootstrap interval of tracked / untracked over (untracked, tracked) rounds: how far another run may land. """
    generator = random.Random(0)
    ratios = sorted(
        trimmed_mean([pair[1] for pair in sample]) / trimmed_mean([pair[0] for pair in sample])
        for sample in ([generator.choice(times) for _round in times] for _resample in range(resamples)))
    return ratios[int(resamples * 0.025)], ratios[int(resamples * 0.975) - 1]


def trimmed_mean(values, cut=0.1):
    """ Mean of the middle 80 %: finer than a median of millisecond-rounded times, deaf to outliers. """
    values = sorted(values)
    keep = values[int(len(values) * cut):len(values) - int(len(values) * cut)]
    return statistics.fmean(keep)


def attach_time(db, addons_path, odoo_root, event_count):
    """ Seconds to attach `event_count` anonymous events of one browser to a contact (rolled back, then deleted). """
    if odoo_root:
        sys.path.insert(0, odoo_root)
    import odoo
    from odoo import SUPERUSER_ID, api
    odoo.tools.config.parse_config(['-d', db, '--addons-path', addons_path])
    registry = odoo.modules.registry.Registry(db)
    browser_id = uuid.uuid4().hex
    with registry.cursor() as cr:
        # Stored as a website visitor's are: by the public user, in requests before the one that identifies it.
        env = api.Environment(cr, SUPERUSER_ID, {})
        Event = env['mautomate.event'].with_user(env.ref('base.public_user')).sudo()
        for offset in range(0, event_count, 1000):
            Event._ingest([{'event_type': 'page_view', 'url': f'https://site.example.com/{offset + n}', 'anonymous_id': browser_id}
                           for n in range(min(1000, event_count - offset))])
        cr.execute('ANALYZE mautomate_event')
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env['res.partner'].create({'name': 'Bench Contact', 'email': 'bench@example.com'})
            start = time.perf_counter()
            attached = env['mautomate.event']._attach_anonymous_history(partner, anonymous_ids=[browser_id])
            elapsed = time.perf_counter() - start
            assert attached == event_count, attached
            cr.rollback()
    finally:
        with registry.cursor() as cr:
            cr.execute("DELETE FROM mautomate_event WHERE anonymous_id = %s", [browser_id])
    return elapsed


def vacuum(db, tables):
    """ VACUUM ANALYZE these tables, as autovacuum would, then CHECKPOINT: a measure then does not run during the
    cleanup, or the disk writes, after the one before. """
    subprocess.run(['psql', '-q', '-d', db, '-c', f'VACUUM ANALYZE {", ".join(tables)}', '-c', 'CHECKPOINT'], check=True)


def beacon_limit_off(db, off):
    """ Turn the per-address beacon limit off (or back to its default): this measures ingestion from one address,
    which the limit (events per minute) would refuse after its first 3,000 events. """
    statements = ["DELETE FROM ir_config_parameter WHERE key = 'mautomate_marketing.rate_limit_track'"]
    if off:
        statements.append("INSERT INTO ir_config_parameter (key, value) VALUES ('mautomate_marketing.rate_limit_track', '0')")
    subprocess.run(['psql', '-q', '-d', db, *(arg for statement in statements for arg in ('-c', statement))], check=True)


def verdict(ok):
    return 'OK' if ok else 'MISSED'


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--db', required=True)
    parser.add_argument('--addons-path', required=True)
    parser.add_argument('--batches', type=int, default=400)
    parser.add_argument('--rounds', type=int, default=1000)
    parser.add_argument('odoo_cmd', nargs='+', help="the command that runs odoo-bin")
    args = parser.parse_args()
    odoo_root = next((os.path.dirname(arg) for arg in args.odoo_cmd if arg.endswith('odoo-bin')), None)

    logfile = tempfile.mktemp(suffix='.log')
    beacon_limit_off(args.db, True)
    process, base = start_odoo(args.odoo_cmd, args.db, args.addons_path, free_port(), logfile)
    try:
        rate = beacon_rate(base, args.batches, 50, clients=4)
        # The 20,000 beacon events just stored: vacuumed before pages are timed (see bench/scoring.py).
        vacuum(args.db, ('mautomate_event', 'website_visitor'))
        pages = {path: page_times(base, path, args.rounds, logfile) for path in ('/', '/contactus')}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        beacon_limit_off(args.db, False)
    seconds = attach_time(args.db, args.addons_path, odoo_root, 10000)

    print(f"beacon ingestion: {rate:,.0f} events/s ({args.batches} batches of 50, 4 clients, 2 workers)"
          f"  target >= 2,000  {verdict(rate >= 2000)}")
    for path, (tracked, untracked, (low, high), tracked_queries, untracked_queries) in pages.items():
        ratio = tracked / untracked
        print(f"page view {path}: tracked {tracked * 1000:.1f} ms / untracked {untracked * 1000:.1f} ms"
              f" = {ratio:.3f} (95 % {low:.3f}-{high:.3f}; trimmed mean of {args.rounds};"
              f" {tracked_queries:.0f} / {untracked_queries:.0f} queries)"
              f"  target <= 1.05  {verdict(ratio <= 1.05)}")
    print(f"attach 10,000 anonymous events to a contact: {seconds:.3f} s  target < 0.5 s  {verdict(seconds < 0.5)}")


if __name__ == '__main__':
    main()
