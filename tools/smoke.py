"""The checks of tools/smoke.sh, against the two Odoo servers it started on one database (workers, the gevent
process, proxy mode).

Prints PASS or FAIL per check and exits non-zero when one failed. Every request goes to 127.0.0.1 with
a timeout; what was stored is read back over XML-RPC as admin, as an integrator's script would.
"""
import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor

import requests
import websocket

# Tracking skips robots: the checks browse as a browser does.
BROWSER_USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
TIMEOUT = 30
# Documentation addresses (RFC 5737), only ever written into headers: a visitor behind the proxy and an excluded one.
VISITOR_ADDRESS = '198.51.100.7'
EXCLUDED_ADDRESS = '198.51.100.9'
# Two servers on one database: e-mails each sent by two browsers at once, one through each server.
SHARED_EMAILS = 3
BEACONS_PER_BROWSER = 4
START_TIMEOUT = 180


class CheckFailed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


def child_pids(pid):
    """ The processes whose parent is `pid`, with their command lines. """
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', encoding='utf-8') as stat:
                parent = int(stat.read().rpartition(')')[2].split()[1])
            with open(f'/proc/{entry}/cmdline', 'rb') as cmdline:
                args = cmdline.read().split(b'\0')
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
        if parent == pid:
            children[int(entry)] = [arg.decode(errors='replace') for arg in args if arg]
    return children


def gevent_pid(server_pid):
    pids = [pid for pid, args in child_pids(server_pid).items() if 'gevent' in args]
    return pids[0] if pids else None


class Smoke:

    def __init__(self, args):
        self.args = args
        self.base = f'http://127.0.0.1:{args.http_port}'
        self.gevent_base = f'http://127.0.0.1:{args.gevent_port}'
        self.first_gevent_pid = None
        self.failed = []

    def run(self, name, check):
        try:
            detail = check()
        except (CheckFailed, requests.RequestException, websocket.WebSocketException, xmlrpc.client.Error, OSError,
                threading.BrokenBarrierError) as error:
            self.failed.append(name)
            print(f'FAIL  {name}: {error}', flush=True)
            return False
        print(f'PASS  {name}' + (f' ({detail})' if detail else ''), flush=True)
        return True

    def browser(self):
        session = requests.Session()
        session.headers['User-Agent'] = BROWSER_USER_AGENT
        return session

    def rpc(self, model, method, *args, **kwargs):
        uid = xmlrpc.client.ServerProxy(f'{self.base}/xmlrpc/2/common').login(self.args.db, 'admin', 'admin')
        require(uid, "admin / admin cannot log in over XML-RPC")
        models = xmlrpc.client.ServerProxy(f'{self.base}/xmlrpc/2/object', allow_none=True)
        return models.execute_kw(self.args.db, uid, 'admin', model, method, list(args), kwargs)

    def events(self, domain):
        return self.rpc('mautomate.event', 'search_read', domain, fields=['event_type', 'source', 'url'])

    def wait_for(self, url, what, while_ok=lambda: None, server_pid=None):
        """ Until `url` answers 200, failing at once when the server (or `while_ok`) says it cannot. """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            require(os.path.exists(f'/proc/{server_pid or self.args.server_pid}'), f"the server exited (see {self.args.log})")
            while_ok()
            try:
                # The first request of a process loads the registry: seconds on a busy machine.
                if requests.get(url, timeout=TIMEOUT).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise CheckFailed(f"{what} did not answer within {START_TIMEOUT} s (see {self.args.log})")

    def server_started(self):
        self.wait_for(f'{self.base}/web/health', f"HTTP on 127.0.0.1:{self.args.http_port}")
        workers = [pid for pid, args in child_pids(self.args.server_pid).items() if 'gevent' not in args]
        return f'{len(workers)} HTTP and cron workers'

    def lead_enrichment_off(self):
        """ Settings' "enrich leads on demand only": the automatic enrichment sends leads' e-mail domains to Odoo's IAP
        service, off this machine, and its cron takes new leads FOR UPDATE NOWAIT, logging an ERROR whenever a request
        updates one at that moment (two submits of one e-mail). """
        crons = self.rpc('ir.cron', 'search', [('code', '=', 'model._iap_enrich_leads_cron()')])
        require(crons, "no lead enrichment cron")
        self.rpc('ir.cron', 'write', crons, {'active': False})
        return 'on demand only'

    def gevent_started(self):
        seen = set()

        def not_respawned():
            # Odoo starts a new gevent process when one exits: a second pid means the first one died.
            pid = gevent_pid(self.args.server_pid)
            seen.update([pid] if pid else [])
            require(len(seen) < 2, f"the gevent process exited at start and was started again (see {self.args.log})")

        self.wait_for(f'{self.gevent_base}/websocket/health', f"the gevent process on 127.0.0.1:{self.args.gevent_port}",
                      not_respawned)
        self.first_gevent_pid = gevent_pid(self.args.server_pid)
        require(self.first_gevent_pid, "no gevent process among the server's children")
        return f'pid {self.first_gevent_pid}'

    def websocket_upgrades(self):
        """ A WebSocket handshake on the gevent port, as a proxy forwards /websocket, then a subscription. """
        connection = websocket.create_connection(f'ws://127.0.0.1:{self.args.gevent_port}/websocket', timeout=TIMEOUT,
                                                 origin=self.gevent_base, header={'User-Agent': BROWSER_USER_AGENT})
        try:
            status = connection.getstatus()
            require(status == 101, f"the handshake answered {status}, not 101")
            connection.send(json.dumps({'event_name': 'subscribe', 'data': {'channels': [], 'last': 0}}))
            connection.ping()
            require(connection.connected, "the server closed the connection after the subscription")
        finally:
            connection.close()
        return 'HTTP 101'

    def tracked_page(self):
        browser = self.browser()
        response = browser.get(f'{self.base}/', timeout=TIMEOUT)
        require(response.status_code == 200, f"GET / answered {response.status_code}")
        browser_id = browser.cookies.get('mautomate_vid')
        require(browser_id, "GET / set no mautomate_vid cookie")
        views = self.events([('anonymous_id', '=', browser_id), ('event_type', '=', 'page_view')])
        require(len(views) == 1, f"{len(views)} page_view events for the browser, not 1")
        return views[0]['url']

    def beacon_batch(self):
        """ What tracker.js sends with sendBeacon: text/plain JSON from another site. """
        browser_id = uuid.uuid4().hex
        now = int(time.time() * 1000)
        body = {'vid': browser_id, 'events': [
            {'type': 'page_view', 'url': 'https://shop.example.com/pricing', 'name': 'Pricing', 'ts': now},
            {'type': 'cta_click', 'url': 'https://shop.example.com/pricing', 'name': 'Book a demo', 'ts': now},
        ]}
        response = self.browser().post(f'{self.base}/mautomate/track', data=json.dumps(body), timeout=TIMEOUT, headers={
            'Content-Type': 'text/plain;charset=UTF-8', 'Origin': 'https://shop.example.com'})
        require(response.status_code == 202, f"the beacon answered {response.status_code}: {response.text[:200]}")
        require(response.json() == {'stored': 2}, f"the beacon answered {response.text[:200]}")
        stored = self.events([('anonymous_id', '=', browser_id), ('source', '=', 'tracker')])
        require(sorted(event['event_type'] for event in stored) == ['cta_click', 'page_view'], f"stored: {stored}")
        return '2 events'

    def form_submit(self):
        """ The demo e-book form: its page for the CSRF and form tokens, its minimum fill time, then the post. """
        browser = self.browser()
        url = f'{self.base}/mautomate/form/ebook'
        page = browser.get(url, timeout=TIMEOUT)
        require(page.status_code == 200, f"GET {url} answered {page.status_code}")
        hidden = dict(re.findall(r'name="(csrf_token|mautomate_token)" value="([^"]*)"', page.text))
        require(len(hidden) == 2, f"the form page has no {'/'.join({'csrf_token', 'mautomate_token'} - set(hidden))}")
        time.sleep(self.min_fill_seconds() + 0.5)
        email = f'smoke-{uuid.uuid4().hex[:12]}@example.com'
        response = browser.post(url, allow_redirects=False, timeout=TIMEOUT, data={
            **hidden, 'email': email, 'name': 'Smoke Test', 'company_name': 'Smoke AB', 'consent': '1'})
        require(response.status_code in (200, 303), f"the submit answered {response.status_code}")
        submits = self.events([('event_type', '=', 'form_submit'), ('partner_id.email', '=', email)])
        require(len(submits) == 1, f"{len(submits)} form_submit events for {email}, not 1")
        return email

    def api_event(self):
        """ An API key made by admin over XML-RPC, then an event posted with its token. """
        key_id = self.rpc('mautomate.api.key', 'create', {'name': 'Smoke test'})
        token = self.rpc('mautomate.api.key', 'action_generate_token', [key_id])['context']['default_token']
        email = f'smoke-api-{uuid.uuid4().hex[:12]}@example.com'
        response = requests.post(f'{self.base}/mautomate/api/v1/events', timeout=TIMEOUT, headers={
            'Authorization': f'Bearer {token}', 'Content-Type': 'application/json'},
            data=json.dumps({'email': email, 'contact_name': 'Smoke Test', 'name': 'Smoke test event', 'value': 1}))
        require(response.status_code == 201, f"the API answered {response.status_code}: {response.text[:200]}")
        stored = self.events([('id', 'in', response.json()['ids']), ('source', '=', 'api'), ('api_key_id', '=', key_id)])
        require(len(stored) == 1, f"{len(stored)} API events stored, not 1")
        return email

    def proxy_mode(self):
        """ Beacons forwarded as a proxy does: the excluded address is matched against the X-Forwarded-For address
        the proxy added (the last one), not 127.0.0.1 nor an entry the client wrote itself. """
        self.rpc('ir.config_parameter', 'set_param', 'mautomate_marketing.excluded_ips', EXCLUDED_ADDRESS)
        try:
            stored = {}
            # What the client wrote, then what the proxy added: each way round, only the added one counts.
            for written, added in ((VISITOR_ADDRESS, EXCLUDED_ADDRESS), (EXCLUDED_ADDRESS, VISITOR_ADDRESS)):
                body = {'vid': uuid.uuid4().hex, 'events': [
                    {'type': 'page_view', 'url': 'https://shop.example.com/', 'ts': int(time.time() * 1000)}]}
                response = self.browser().post(f'{self.base}/mautomate/track', data=json.dumps(body), timeout=TIMEOUT, headers={
                    'Content-Type': 'text/plain;charset=UTF-8', 'X-Forwarded-Host': f'127.0.0.1:{self.args.http_port}',
                    'X-Forwarded-Proto': 'http', 'X-Forwarded-For': f'{written}, {added}'})
                require(response.status_code == 202, f"the beacon answered {response.status_code}: {response.text[:200]}")
                stored[added] = response.json()['stored']
        finally:
            self.rpc('ir.config_parameter', 'set_param', 'mautomate_marketing.excluded_ips', '')
        require(stored == {EXCLUDED_ADDRESS: 0, VISITOR_ADDRESS: 1},
                f"stored per forwarded address: {stored}, expected none from {EXCLUDED_ADDRESS} and one from {VISITOR_ADDRESS}")
        return f'{EXCLUDED_ADDRESS} excluded, {VISITOR_ADDRESS} stored'

    def min_fill_seconds(self):
        form = self.rpc('mautomate.form', 'search_read', [('slug', '=', 'ebook')], fields=['min_fill_seconds'])
        require(form, "no demo form 'ebook'")
        return form[0]['min_fill_seconds']

    def two_servers(self):
        """ A second server on the database, as behind a load balancer: browsers each behind their own address (the
        per-address limits) send beacons to both servers in turn, and each e-mail is submitted at once by two browsers,
        one through each server; each e-mail gives one contact and no event is lost. """
        second = f'http://127.0.0.1:{self.args.second_http_port}'
        self.wait_for(f'{second}/web/health', f"HTTP on 127.0.0.1:{self.args.second_http_port}",
                      server_pid=self.args.second_server_pid)
        servers = [self.base, second]
        run = uuid.uuid4().hex[:8]
        emails = [f'smoke-{run}-{index}@example.com' for index in range(SHARED_EMAILS)]
        browsers = [(number, emails[number // 2]) for number in range(2 * SHARED_EMAILS)]
        together = threading.Barrier(len(browsers), timeout=TIMEOUT * 2)
        fill_seconds = self.min_fill_seconds()

        def browse(number, email):
            browser = self.browser()
            browser.headers.update({'X-Forwarded-Host': '127.0.0.1', 'X-Forwarded-Proto': 'http',
                                    'X-Forwarded-For': f'198.51.100.{20 + number}'})
            browser_id = uuid.uuid4().hex
            for beacon in range(BEACONS_PER_BROWSER):
                body = {'vid': browser_id, 'events': [{'type': 'page_view', 'url': f'https://shop.example.com/{beacon}',
                                                       'ts': int(time.time() * 1000)}]}
                response = browser.post(f'{servers[(number + beacon) % 2]}/mautomate/track', data=json.dumps(body),
                                        headers={'Content-Type': 'text/plain;charset=UTF-8'}, timeout=TIMEOUT)
                require(response.status_code == 202, f"a beacon answered {response.status_code}: {response.text[:200]}")
            page = browser.get(f'{servers[number % 2]}/mautomate/form/ebook', timeout=TIMEOUT)
            require(page.status_code == 200, f"the form page answered {page.status_code}")
            hidden = dict(re.findall(r'name="(csrf_token|mautomate_token)" value="([^"]*)"', page.text))
            time.sleep(fill_seconds + 0.5)
            together.wait()
            # Sent to the other server than the page: the session and its CSRF token are the database's, not a server's.
            answers = {'email': email, 'name': 'Smoke Test', 'company_name': 'Smoke AB', 'consent': '1'}
            response = browser.post(f'{servers[(number + 1) % 2]}/mautomate/form/ebook', data={**hidden, **answers},
                                    allow_redirects=False, timeout=TIMEOUT)
            require(response.status_code in (200, 303), f"a submit answered {response.status_code}")
            return browser_id

        with ThreadPoolExecutor(len(browsers)) as pool:
            futures = [pool.submit(browse, number, email) for number, email in browsers]
            browser_ids = [future.result(timeout=START_TIMEOUT) for future in futures]
        contacts = self.rpc('res.partner', 'read_group', [('email', 'in', emails)], ['email'], ['email'], lazy=False)
        per_email = {group['email']: group['__count'] for group in contacts}
        require(per_email == dict.fromkeys(emails, 1), f"contacts per e-mail: {per_email}")
        submits = self.events([('event_type', '=', 'form_submit'), ('partner_id.email', 'in', emails)])
        require(len(submits) == 2 * SHARED_EMAILS, f"{len(submits)} form submits stored, not {2 * SHARED_EMAILS}")
        beacons = self.events([('anonymous_id', 'in', browser_ids), ('source', '=', 'tracker')])
        require(len(beacons) == len(browser_ids) * BEACONS_PER_BROWSER,
                f"{len(beacons)} beacon events stored, not {len(browser_ids) * BEACONS_PER_BROWSER}")
        return f'{len(emails)} contacts, {len(submits)} submits, {len(beacons)} beacon events'

    def gevent_alive(self):
        """ Still the gevent process of the start: Odoo respawns one that died, so a new pid is a failure too. """
        now = gevent_pid(self.args.server_pid)
        require(self.first_gevent_pid, "the gevent process never answered")
        require(now == self.first_gevent_pid, f"the gevent process {self.first_gevent_pid} is gone (now: {now})")
        response = requests.get(f'{self.gevent_base}/websocket/health', timeout=TIMEOUT)
        require(response.status_code == 200, f"/websocket/health answered {response.status_code}")
        return f'pid {now}'


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--db', required=True)
    parser.add_argument('--http-port', type=int, required=True)
    parser.add_argument('--gevent-port', type=int, required=True)
    parser.add_argument('--server-pid', type=int, required=True)
    parser.add_argument('--second-http-port', type=int, required=True)
    parser.add_argument('--second-server-pid', type=int, required=True)
    parser.add_argument('--log', required=True)
    smoke = Smoke(parser.parse_args())
    if not smoke.run('the server answers with its workers', smoke.server_started):
        return 1
    smoke.run('lead enrichment (IAP) is switched to on demand', smoke.lead_enrichment_off)
    smoke.run('the gevent process answers', smoke.gevent_started)
    smoke.run('/websocket upgrades on the gevent port', smoke.websocket_upgrades)
    smoke.run('a website page is tracked', smoke.tracked_page)
    smoke.run('a beacon batch is stored', smoke.beacon_batch)
    smoke.run('a form submit is stored', smoke.form_submit)
    smoke.run('an API event is stored', smoke.api_event)
    smoke.run('behind a proxy, the excluded address is the forwarded one', smoke.proxy_mode)
    smoke.run('two servers on one database: one contact per e-mail, no event lost', smoke.two_servers)
    smoke.run('the gevent process is alive at the end', smoke.gevent_alive)
    return 1 if smoke.failed else 0


if __name__ == '__main__':
    sys.exit(main())
