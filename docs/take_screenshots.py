""" Screenshots for the README, from a running Odoo with the demo data (tools/setup.sh).

Usage: python docs/take_screenshots.py [http://localhost:8069 [database [name,name...]]]
(needs requests and websocket-client; the names pick some of the screenshots; run the server without cron
workers, --max-cron-threads=0: the script runs the flow engine itself)
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

import requests
import websocket

BASE = sys.argv[1] if len(sys.argv) > 1 else 'http://localhost:8069'
DB = sys.argv[2] if len(sys.argv) > 2 else 'mautomate'
ONLY = set(sys.argv[3].split(',')) if len(sys.argv) > 3 else None
# The screenshots of the demo welcome series, after flow_history.
FLOW_SHOTS = {'flows_kanban', 'flow_form', 'flow_traces_pivot'}
# Open the form's Timeline tab and bring it to the top of the screen.
OPEN_TIMELINE_TAB = """
    document.querySelector('.o_notebook_headers a[name=mautomate_timeline]').click();
    setTimeout(() => document.querySelector('.o_notebook_headers').scrollIntoView({block: 'start'}), 2000);
"""
# Open the form's Score tab ("why this score").
OPEN_SCORE_TAB = OPEN_TIMELINE_TAB.replace('mautomate_timeline', 'mautomate_scoring')
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'screenshots')


def admin_session():
    session = requests.Session()
    session.post(f'{BASE}/web/session/authenticate', json={'params': {'db': DB, 'login': 'admin', 'password': 'admin'}})
    return session


def visitor_journey(rpc):
    """ An anonymous visitor reads the site, asks for a quote, then another system reports a video view. """
    visitor = requests.Session()
    visitor.headers['User-Agent'] = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
    for path in ('/', '/contactus'):
        visitor.get(BASE + path)
        time.sleep(4)  # reading the page: the Timeline shows the time spent on each
    lead_id = visitor.post(f'{BASE}/website/form/crm.lead', headers={'Referer': f'{BASE}/contactus'}, data={
        'contact_name': 'Vera Visitor', 'email_from': 'vera.visitor@example.com', 'partner_name': 'Visitor Ventures',
        'name': 'Pricing for 40 seats', 'description': 'Can you send us a quote?'}).json()['id']
    key_id = rpc('mautomate.api.key', 'search', [('name', '=', 'Webshop')], limit=1)[0]
    token = rpc('mautomate.api.key', 'action_generate_token', [key_id])['context']['default_token']
    requests.post(f'{BASE}/mautomate/api/v1/events', headers={'Authorization': f'Bearer {token}'}, json={
        'email': 'vera.visitor@example.com', 'name': 'Product tour video watched 30 s', 'value': 30})
    return lead_id


def flow_history(rpc):
    """ The demo welcome series at work: contacts enrolled by hand (two of them blacklisted, one without
    e-mail), the engine run step by step, some mails opened and clicked, one contact reaching the goal. """
    def ref(xmlid):
        return rpc('ir.model.data', 'check_object_reference', *xmlid.split('.'))[1]

    flow_id = ref('mautomate_marketing.mautomate_flow_demo_welcome')
    cron_id = ref('mautomate_marketing.ir_cron_mautomate_flow_engine')
    partner_ids = rpc('res.partner', 'search', [('email', '!=', False), ('user_ids', '=', False)], limit=14, order='id')
    # Found again on a second run: the flow takes a contact once, the figures stay those of one run.
    no_mail = rpc('res.partner', 'search', [('name', '=', 'Nils No-Mail')], limit=1)
    partner_ids += no_mail or [rpc('res.partner', 'create', {'name': 'Nils No-Mail'})]
    blacklisted = rpc('res.partner', 'read', partner_ids[-3:-1], ['email'])
    rpc('mail.blacklist', 'create', [{'email': partner['email']} for partner in blacklisted])
    rpc('mautomate.flow', 'action_enroll', [flow_id], partner_ids)
    rpc('ir.cron', 'method_direct_trigger', [cron_id])  # the welcome mails
    # What the open pixel and the tracked links record (mailing.trace's set_opened and set_clicked).
    mailing_id = rpc('mautomate.flow.step', 'read', [ref('mautomate_marketing.mautomate_flow_demo_welcome_step_mail')],
                     ['mailing_id'])[0]['mailing_id'][0]
    trace_ids = rpc('mailing.trace', 'search', [('mass_mailing_id', '=', mailing_id)], order='id')
    now = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())
    rpc('mailing.trace', 'write', trace_ids[:7], {'trace_status': 'open', 'open_datetime': now})
    rpc('mailing.trace', 'write', trace_ids[:3], {'links_click_datetime': now})
    signed_up = ref('mautomate_marketing.res_partner_category_flow_demo_signed_up')
    rpc('res.partner', 'write', partner_ids[:1], {'category_id': [(4, signed_up)]})
    for _step in range(2):  # the condition, then the steps of its branches
        rpc('ir.cron', 'method_direct_trigger', [cron_id])
    return flow_id


def form_ab_test(rpc):
    """ The e-book form against a variant asking two questions at once: browsers shown the form, some sending it. """
    ebook_id = rpc('ir.model.data', 'check_object_reference', 'mautomate_marketing', 'mautomate_form_demo_ebook')[1]
    rpc('mautomate.form', 'write', [ebook_id], {'min_fill_seconds': 0})
    test_id = rpc('mautomate.form', 'action_new_ab_test', [ebook_id])['res_id']
    variant_b = rpc('mautomate.ab.test', 'read', [test_id], ['variant_ids'])[0]['variant_ids'][1]
    form_b = rpc('mautomate.ab.variant', 'read', [variant_b], ['res_id'])[0]['res_id']
    rpc('mautomate.form', 'write', [form_b], {'questions_per_page': 2})
    rpc('mautomate.ab.test', 'action_start', [test_id])
    # The form's rate limit allows 10 posts a minute from one address: 9 of the 60 browsers send it.
    for index in range(60):
        browser = requests.Session()
        browser.headers['User-Agent'] = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
        browser.get(f'{BASE}/')
        page = browser.get(f'{BASE}/mautomate/form/ebook/embed', headers={'X-Disable-Tracking': '1'}).text
        if index % 7 == 0:
            fields = {name: page.split(f'name="{name}" value="', 1)[1].split('"', 1)[0] for name in ('csrf_token', 'mautomate_token')}
            url = BASE + page.split('data-embed-url="', 1)[1].split('"', 1)[0]
            browser.post(url, headers={'X-Disable-Tracking': '1'}, data={
                **fields, 'email': f'ab.reader{index}@example.com', 'name': f'Reader {index}', 'consent': '1'})
    return test_id


def main():
    session = admin_session()

    def rpc(model, method, *args, **kw):
        return session.post(f'{BASE}/web/dataset/call_kw', json={'params': {
            'model': model, 'method': method, 'args': list(args), 'kwargs': kw}}).json()['result']

    lead_id = visitor_journey(rpc) if ONLY is None or ONLY - FLOW_SHOTS - {'popup_exit_intent', 'form_ab_test'} else None
    flow_id = flow_history(rpc) if ONLY is None or ONLY & FLOW_SHOTS else None
    ab_test_id = form_ab_test(rpc) if ONLY is None or 'form_ab_test' in ONLY else None
    azure_id = rpc('ir.model.data', 'check_object_reference', 'base', 'res_partner_12')[1]
    hot_lead_id = (rpc('crm.lead', 'search', [('mautomate_grade', '=', 'A1')], limit=1, order='mautomate_score desc') or [None])[0]
    pages = [
        ('contact_timeline', f'/odoo/action-base.action_partner_form/{azure_id}', OPEN_TIMELINE_TAB),
        ('lead_timeline', f'/odoo/action-crm.crm_lead_all_leads/{lead_id}', OPEN_TIMELINE_TAB),
        ('lead_timeline_list', f'/odoo/action-crm.crm_lead_all_leads/{lead_id}',
         "document.querySelector('button[name=action_mautomate_timeline]').click()"),
        ('events_graph', '/odoo/action-mautomate_marketing.mautomate_event_action?view_type=graph', None),
        ('settings', '/odoo/action-mautomate_marketing.mautomate_config_settings_action', None),
        ('pipeline_grades', '/odoo/crm', None),
        ('lead_why_this_score', f'/odoo/action-crm.crm_lead_all_leads/{hot_lead_id}', OPEN_SCORE_TAB),
        ('score_rules', '/odoo/action-mautomate_marketing.mautomate_score_rule_action', None),
        ('flows_kanban', '/odoo/action-mautomate_marketing.mautomate_flow_action', None),
        ('flow_form', f'/odoo/action-mautomate_marketing.mautomate_flow_action/{flow_id}', None),
        ('flow_traces_pivot', '/odoo/action-mautomate_marketing.mautomate_flow_trace_action?view_type=pivot', None),
        ('form_ab_test', f'/odoo/action-mautomate_marketing.mautomate_ab_test_action/{ab_test_id}', None),
    ]
    pages = [page for page in pages if ONLY is None or page[0] in ONLY]
    profile = tempfile.mkdtemp()
    chrome = subprocess.Popen(['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--remote-debugging-port=9333',
                               '--no-first-run', '--disable-background-networking', '--disable-component-update',
                               f'--user-data-dir={profile}', 'about:blank'], stderr=subprocess.DEVNULL)
    try:
        # A cold first start of Chromium can take many seconds.
        for _attempt in range(60):
            try:
                targets = requests.get('http://127.0.0.1:9333/json', timeout=2).json()
                break
            except requests.RequestException:
                time.sleep(0.5)
        target = next(t for t in targets if t['type'] == 'page')
        ws = websocket.create_connection(target['webSocketDebuggerUrl'], suppress_origin=True)
        counter = iter(range(1, 10**6))

        def call(method, **params):
            ident = next(counter)
            ws.send(json.dumps({'id': ident, 'method': method, 'params': params}))
            while True:
                message = json.loads(ws.recv())
                if message.get('id') == ident:
                    return message.get('result', {})

        call('Emulation.setDeviceMetricsOverride', width=1400, height=900, deviceScaleFactor=1, mobile=False)
        # The browser in admin's time zone, as a real user's: lists and the Timeline show the same times.
        admin_tz = rpc('res.users', 'search_read', [('login', '=', 'admin')], ['tz'])[0]['tz']
        if admin_tz:
            call('Emulation.setTimezoneOverride', timezoneId=admin_tz)
        call('Network.enable')
        call('Network.setCookie', name='session_id', value=session.cookies['session_id'], url=BASE)
        for name, path, click in pages:
            call('Page.navigate', url=BASE + path)
            time.sleep(15)
            if click:
                call('Runtime.evaluate', expression=click)
                time.sleep(5)
            # Odoo's own passing notices (assets refreshed by a cron) are not part of what is shown.
            call('Runtime.evaluate', expression="document.querySelectorAll('.o_notification_close').forEach(b => b.click())")
            time.sleep(1)
            shot = call('Page.captureScreenshot', format='png')
            with open(os.path.join(OUT, f'{name}.png'), 'wb') as file:
                file.write(base64.b64decode(shot['data']))
            print(f'{name}.png')
        if ONLY is None or 'popup_exit_intent' in ONLY:
            shoot_popup(call)
    finally:
        chrome.terminate()


def shoot_popup(call):
    """ The demo pop-up: an anonymous visitor's pointer leaves the home page by its top edge. """
    call('Network.deleteCookies', name='session_id', url=BASE)
    call('Page.navigate', url=BASE + '/')
    time.sleep(10)
    call('Runtime.evaluate', expression="""
        document.dispatchEvent(new MouseEvent('mouseout', {bubbles: true, clientX: 300, clientY: -1}));
    """)
    time.sleep(4)
    shot = call('Page.captureScreenshot', format='png')
    with open(os.path.join(OUT, 'popup_exit_intent.png'), 'wb') as file:
        file.write(base64.b64decode(shot['data']))
    print('popup_exit_intent.png')


if __name__ == '__main__':
    main()
