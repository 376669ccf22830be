import contextlib
import json
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from freezegun import freeze_time

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.mautomate_marketing.tools import outgoing

from .test_flows import FlowCase

ALLOWED_HOSTS = 'mautomate_marketing.outgoing_allowed_hosts'
real_getaddrinfo = socket.getaddrinfo


class WebhookReceiver(BaseHTTPRequestHandler):
    """ A receiving system: answers the next status of the server's `statuses` (the last one once they run out),
    redirects to its `location` if it has one, and keeps every request it received. """

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length'] or 0))
        self.server.received.append((dict(self.headers), body))
        if self.server.location:
            self.send_response(302)
            self.send_header('Location', self.server.location)
            self.end_headers()
            return
        status = self.server.statuses.pop(0) if len(self.server.statuses) > 1 else self.server.statuses[0]
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'ok' if status < 300 else b'receiver is down: secret internal detail')

    def do_GET(self):
        self.server.received.append((dict(self.headers), b''))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"AccessKeyId": "internal"}')

    def log_message(self, *args):
        pass


class WebhookMixin:
    """ Receivers on 127.0.0.1 and runs of the engine with the webhook sender, as their crons do. """

    def start_receiver(self, statuses=(200,), allow=True, location=None):
        """ A receiver; `allow`: listed in the Settings' allowed hosts (it is on an internal address). """
        server = ThreadingHTTPServer(('127.0.0.1', 0), WebhookReceiver)
        server.statuses, server.received, server.location = list(statuses), [], location
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        port = server.server_address[1]
        if allow:
            self.allow_hosts(f'127.0.0.1:{port}')
        return server, f'http://127.0.0.1:{port}/hooks/mautomate'

    def allow_hosts(self, *entries):
        params = self.env['ir.config_parameter'].sudo()
        known = [entry for entry in (params.get_param(ALLOWED_HOSTS) or '').split(',') if entry]
        params.set_param(ALLOWED_HOSTS, ','.join(known + list(entries)))

    def send_webhooks(self, at=None):
        """ One run of the webhook sender's cron, on a cursor of its own that commits each call as the cron does. """
        if self.registry.test_cr is None:
            self.registry.enter_test_mode(self.cr)
            self.addCleanup(self.registry.leave_test_mode)
        self.env.flush_all()
        with freeze_time(at or self.start), self.registry.cursor() as cr:
            sent = self.env(cr=cr)['mautomate.webhook.delivery']._cron_send()
        self.env.invalidate_all()
        return sent

    def run_flows(self, at=None):
        """ The engine and the webhook sender until neither has anything to do at `at`. """
        self.run_engine(at)
        while self.send_webhooks(at):
            self.run_engine(at)


@tagged('post_install', '-at_install')
class TestOutgoing(WebhookMixin, FlowCase):
    """ SSRF: a Marketing Automation manager (not an administrator) points a webhook at the server's own network. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        groups = 'base.group_user,mautomate_marketing.group_mautomate_manager'
        cls.manager = new_test_user(cls.env, 'mautomate_ssrf_manager', groups=groups)
        cls.marketer = new_test_user(cls.env, 'mautomate_ssrf_user', groups='base.group_user,mautomate_marketing.group_mautomate_user')

    def setUp(self):
        super().setUp()
        self.connections = []
        self.lookups = {}

    def fake_getaddrinfo(self, host, port, *args, **kwargs):
        """ The test's DNS: its names resolve to the given addresses, all others as the machine resolves them. """
        if host in self.lookups:
            answer = self.lookups[host]
            addresses = answer.pop(0) if isinstance(answer, list) and len(answer) > 1 else (
                answer[0] if isinstance(answer, list) else answer)
            return [(socket.AF_INET6 if ':' in address else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, '',
                     (address, port)) for address in addresses.split(',')]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def no_connection(self, address, *args, **kwargs):
        """ The connection layer of tests that must not reach the network: notes the address, sends nothing. """
        self.connections.append(address)
        raise ConnectionRefusedError("the test lets nothing out")

    def webhook_flow(self, url, user=None):
        """ A running flow, made as `user` (default: the manager), whose webhook is followed by a tag. """
        user = user or self.manager
        flow = self.Flow.with_user(user).create({
            'name': 'Exploit flow', 'trigger_ids': [(0, 0, {'trigger_type': 'event', 'event_type': 'form_submit'})]})
        hook = self.Step.with_user(user).create({'flow_id': flow.id, 'name': 'hook', 'kind': 'webhook',
                                                 'webhook_url': 'https://hooks.example.com/mautomate'})
        self.step(flow, 'tag', kind='tags', parents=[hook], tag_add_ids=[(6, 0, self.tag_vip.ids)])
        flow.with_user(user).action_start()
        if url != hook.webhook_url:
            # As a step saved before addresses were checked, in a running flow: the engine must refuse it too.
            self.env.cr.execute("UPDATE mautomate_flow_step SET webhook_url = %s WHERE id = %s", (url, hook.id))
            hook.invalidate_recordset(['webhook_url'])
        return flow.with_user(user), hook

    def run_test_on_contact(self, flow):
        """ "Test on one contact", as the manager: its lines. """
        if self.registry.test_cr is None:
            self.registry.enter_test_mode(self.cr)
            self.addCleanup(self.registry.leave_test_mode)
        wizard = self.env['mautomate.flow.test'].with_user(self.manager).with_context(default_flow_id=flow.id).create(
            {'partner_id': self.partner.id})
        wizard.action_run()
        return wizard.line_ids

    @mute_logger('odoo.addons.mautomate_marketing.models.mautomate_flow_engine')
    def test_ssrf_to_loopback_makes_no_request(self):
        """ The internal service on 127.0.0.1 gets no request: not by its address, nor by localhost, a name that
        resolves to it, or a redirect of an allowed host to it; the test on one contact calls nothing. """
        server, _url = self.start_receiver(allow=False)
        port = server.server_address[1]
        target = f'http://127.0.0.1:{port}/latest/meta-data/'
        redirector, redirect_url = self.start_receiver(location=target)
        self.lookups['metadata.attacker.example'] = '127.0.0.1'
        urls = [target, f'http://localhost:{port}/', f'http://metadata.attacker.example:{port}/latest/meta-data/',
                redirect_url]
        # The receiver's port counts as a standard one: only the address check stands between it and the call.
        with patch.object(outgoing, 'ALLOWED_PORTS', (80, 443, port)), \
                patch.object(socket, 'getaddrinfo', self.fake_getaddrinfo):
            for url in urls:
                with self.subTest(url=url):
                    flow, hook = self.webhook_flow(url)
                    host = url.split('/')[2].split(':')[0]
                    if host in ('127.0.0.1', 'localhost') and url != redirect_url:
                        # Refused without asking the DNS: the test refuses to run, as starting the flow would.
                        with self.assertRaisesRegex(ValidationError, f"The address {host} is not allowed: internal address"):
                            self.run_test_on_contact(flow)
                    else:
                        lines = self.run_test_on_contact(flow)
                        hook_line = lines.filtered(lambda line, hook=hook: line.step_id == hook)
                        self.assertEqual(hook_line.state, 'done', "the test does not call the webhook")
                        self.assertIn(f"Would POST to {host}", hook_line.note)
                    flow.action_enroll(self.partner.ids)
                    for minutes in (0, 5, 35):
                        self.run_flows(self.start + timedelta(minutes=minutes))
                    trace = hook.trace_ids
                    self.assertEqual((trace.state, trace.attempts), ('error', 3))
                    expected = "answered 302 (redirects are not followed)" if url == redirect_url else "internal address"
                    self.assertIn(expected, trace.error_message)
                    self.assertNotIn('meta-data', trace.error_message)
        self.assertEqual(server.received, [], "no request reached the internal service")
        self.assertEqual(len(redirector.received), 3, "the allowed host got its 3 attempts, its redirect was not followed")

    def test_private_addresses_refused_before_connecting(self):
        """ Private, link-local and loopback addresses, literal or resolved, IPv4-mapped or NAT64: refused by
        the address check; the connection layer (patched) is never reached. A public address is connected to as
        resolved once: no second lookup can rebind it. """
        addresses = ['10.0.0.1', '169.254.169.254', '192.168.1.1', '::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
                     '100.64.0.1', '0.0.0.0', '224.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::1', 'fe80::1', 'fc00::1']
        with patch.object(socket, 'create_connection', self.no_connection), \
                patch.object(socket, 'getaddrinfo', self.fake_getaddrinfo), \
                mute_logger('odoo.addons.mautomate_marketing.tools.outgoing'):
            for address in addresses:
                host = f'[{address}]' if ':' in address else address
                for url in (f'http://{host}/latest/meta-data/', 'https://internal.attacker.example/'):
                    self.lookups['internal.attacker.example'] = address
                    with self.subTest(url=url, address=address), self.assertRaises(outgoing.OutgoingRefused) as refused:
                        outgoing.post(url, b'{}', {}, 5)
                    self.assertEqual(refused.exception.reason, outgoing.INTERNAL)
                # A name with a public address and an internal one is refused: either could be connected to.
                self.lookups['mixed.attacker.example'] = f'93.184.216.34,{address}'
                with self.assertRaises(outgoing.OutgoingRefused):
                    outgoing.post('https://mixed.attacker.example/', b'{}', {}, 5)
            self.assertEqual(self.connections, [], "nothing was sent to any of these addresses")
            # A public address, then 127.0.0.1 to a second lookup: the connection goes to the checked one.
            self.lookups['rebind.attacker.example'] = ['93.184.216.34', '127.0.0.1']
            with self.assertRaises(outgoing.OutgoingFailed):
                outgoing.post('https://rebind.attacker.example/', b'{}', {}, 5)
            self.assertEqual(self.connections, [('93.184.216.34', 443)])
        # The engine refuses such a step's URL with the reason, and nothing is connected to.
        self.connections.clear()
        with patch.object(socket, 'create_connection', self.no_connection), \
                mute_logger('odoo.addons.mautomate_marketing.models.mautomate_flow_engine'):
            flow, hook = self.webhook_flow('http://169.254.169.254/latest/meta-data/')
            flow.action_enroll(self.partner.ids)
            self.run_flows()
        self.assertIn("The address 169.254.169.254 is not allowed: internal address", hook.trace_ids.error_message)
        self.assertEqual(self.connections, [])

    def test_total_time_limit(self):
        """ A receiver answering a byte every 0.1 second never lets a read time out: the call is cut after its
        timeout all the same. """
        listener = socket.create_server(('127.0.0.1', 0))
        self.addCleanup(listener.close)
        sent = []

        def trickle():
            peer, _address = listener.accept()
            with peer:
                peer.recv(65536)
                peer.sendall(b'HTTP/1.1 200 OK\r\nX-Slow: ')
                for _index in range(50):
                    try:
                        peer.sendall(b'a')
                    except OSError:
                        return
                    sent.append(1)
                    time.sleep(0.1)
        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        with self.assertRaises(outgoing.OutgoingFailed) as failed, \
                mute_logger('odoo.addons.mautomate_marketing.tools.outgoing'):
            outgoing.post(f'http://127.0.0.1:{port}/', b'{}', {}, 1, {('127.0.0.1', port)})
        thread.join(10)
        self.assertEqual(failed.exception.reason, outgoing.TIMEOUT)
        self.assertLess(len(sent), 30, "cut after about a second, not after the 5 seconds of the answer")

    def tls_receiver(self, name):
        """ An HTTPS receiver on 127.0.0.1 with a certificate for `name`: (server, its certificate's file, the
        names clients asked for in TLS). """
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                       .serial_number(1).not_valid_before(datetime(2020, 1, 1)).not_valid_after(datetime(2040, 1, 1))
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                       .sign(key, hashes.SHA256()))
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        cert_file, key_file = os.path.join(folder, 'cert.pem'), os.path.join(folder, 'key.pem')
        with open(cert_file, 'wb') as file:
            file.write(certificate.public_bytes(serialization.Encoding.PEM))
        with open(key_file, 'wb') as file:
            file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        names = []
        context.sni_callback = lambda _socket, server_name, _context: names.append(server_name)
        server, _url = self.start_receiver(allow=False)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        return server, cert_file, names

    def test_tls_names_the_host_while_connecting_to_the_checked_address(self):
        """ HTTPS to a name resolved to 127.0.0.1 (allowed): TLS asks for the name and checks the certificate
        against it, not against the address connected to. """
        server, cert_file, names = self.tls_receiver('hooks.partner.example')
        port = server.server_address[1]
        self.lookups.update({'hooks.partner.example': '127.0.0.1', 'other.partner.example': '127.0.0.1'})
        allowed = {('hooks.partner.example', port), ('other.partner.example', port)}
        trusting = ssl.create_default_context(cafile=cert_file)
        with patch.object(socket, 'getaddrinfo', self.fake_getaddrinfo), \
                patch.object(ssl, 'create_default_context', lambda: trusting), \
                mute_logger('odoo.addons.mautomate_marketing.tools.outgoing'):
            status = outgoing.post(f'https://hooks.partner.example:{port}/hook', b'{}', {}, 5, allowed)
            with self.assertRaises(outgoing.OutgoingFailed):
                outgoing.post(f'https://other.partner.example:{port}/hook', b'{}', {}, 5, allowed)
        self.assertEqual(status, 200)
        self.assertEqual(names, ['hooks.partner.example', 'other.partner.example'])
        self.assertEqual(len(server.received), 1, "a certificate of another name is refused before sending")
        self.assertEqual(server.received[0][0]['Host'], f'hooks.partner.example:{port}')
        # Without the test's authority, the receiver's certificate is not trusted: nothing is sent.
        with patch.object(socket, 'getaddrinfo', self.fake_getaddrinfo), self.assertRaises(outgoing.OutgoingFailed), \
                mute_logger('odoo.addons.mautomate_marketing.tools.outgoing'):
            outgoing.post(f'https://hooks.partner.example:{port}/hook', b'{}', {}, 5, allowed)
        self.assertEqual(len(server.received), 1)

    def test_refused_urls_when_saved(self):
        """ A URL refused whatever the DNS says is refused when the step is saved, with why. """
        _flow, hook = self.webhook_flow('https://hooks.example.com/mautomate')
        hook = hook.with_user(self.manager)
        for url, message in (('ftp://example.com/', "only http:// and https://"),
                             ('file:///etc/passwd', "only http:// and https://"),
                             ('http://127.0.0.1:8069/web', "not allowed: only ports 80 and 443"),
                             ('http://127.0.0.1/web', "127.0.0.1 is not allowed: internal address"),
                             ('http://localhost/', "internal address"),
                             ('http://169.254.169.254/latest/meta-data/', "internal address"),
                             ('http://10.0.0.1/', "internal address"),
                             ('http://192.168.1.1/', "internal address"),
                             ('http://[::1]/', "internal address"),
                             ('http://[::ffff:127.0.0.1]/', "internal address"),
                             ('https://hooks.example.com:8443/', "only ports 80 and 443")):
            with self.subTest(url=url), self.refused(message):
                hook.write({'webhook_url': url})
        hook.webhook_url = 'https://hooks.example.com:443/mautomate?token=abc'
        # An administrator's allowed integration host: on an internal address, and on its port.
        self.allow_hosts('crm.intranet.example:8443')
        hook.webhook_url = 'https://crm.intranet.example:8443/hooks'
        with self.refused("only ports 80 and 443"):
            hook.webhook_url = 'https://crm.intranet.example:9000/hooks'

    def test_allowed_receiver_gets_signed_call_and_body_is_not_kept(self):
        """ An allowed host on 127.0.0.1 gets the signed POST, with its name as Host; only the status code of its
        answer is kept; the logs name the host, not the path, query or credentials. """
        server, _url = self.start_receiver([500, 200], allow=False)
        port = server.server_address[1]
        self.allow_hosts(f'hooks.partner.example:{port}')
        self.lookups['hooks.partner.example'] = '127.0.0.1'
        url = f'http://hookuser:s3cret-pass@hooks.partner.example:{port}/private/path?token=t0ken'
        flow, hook = self.webhook_flow('https://hooks.example.com/mautomate')
        hook.with_user(self.manager).webhook_url = url
        after = flow.step_ids - hook
        flow.action_enroll(self.partner.ids)
        with patch.object(socket, 'getaddrinfo', self.fake_getaddrinfo), \
                self.assertLogs('odoo.addons.mautomate_marketing.tools.outgoing', logging.INFO) as logs, \
                mute_logger('odoo.addons.mautomate_marketing.models.mautomate_flow_engine'):
            self.run_flows()
            trace = hook.trace_ids
            self.assertEqual((trace.state, trace.attempts), ('scheduled', 1))
            self.assertIn("The webhook answered 500.", trace.error_message)
            self.assertNotIn("receiver is down", trace.error_message, "the answer's body is never kept")
            self.assertEqual(after.trace_ids.state, False, "the next step waits for the webhook")
            self.run_flows(self.start + timedelta(minutes=5))
        self.assertEqual((trace.state, trace.error_message), ('done', False))
        self.assertEqual(after.trace_ids.state, 'done')
        self.assertEqual(len(server.received), 2)
        headers, body = server.received[-1]
        self.assertEqual(headers['Host'], f'hooks.partner.example:{port}')
        self.assertEqual(headers['X-Mautomate-Delivery'], str(trace.id))
        self.assertTrue(headers['X-Mautomate-Signature'].startswith('sha256='))
        self.assertEqual(json.loads(body)['contact']['email'], 'ann@prospect.example.com')
        deliveries = self.env['mautomate.webhook.delivery'].search([('trace_id', '=', trace.id)], order='id')
        self.assertEqual(deliveries.mapped('status_code'), [500, 200])
        self.assertEqual(deliveries.mapped('state'), ['failed', 'sent'])
        self.assertEqual(deliveries.mapped('body'), [False, False], "the payload is not kept once called")
        self.env['mautomate.webhook.delivery']._gc_deliveries()
        self.assertTrue(deliveries.exists(), "kept a month")
        with freeze_time(self.start + timedelta(days=31)):
            self.env['mautomate.webhook.delivery']._gc_deliveries()
        self.assertFalse(deliveries.exists())
        output = '\n'.join(logs.output)
        self.assertIn('hooks.partner.example', output)
        for secret in ('s3cret', 'hookuser', 'private/path', 't0ken'):
            self.assertNotIn(secret, output)

    def test_kill_between_calls_repeats_at_most_the_call_in_hand(self):
        """ The sender is killed after its second call, before committing it: the next run makes that call again,
        and the calls delivered before are not repeated. """
        server, url = self.start_receiver()
        flow, hook = self.webhook_flow('https://hooks.example.com/mautomate')
        hook.webhook_url = url
        contacts = self.env['res.partner'].create([{'name': f'Kill {index}', 'email': f'kill{index}@example.com'}
                                                   for index in range(5)])
        flow.action_enroll(contacts.ids)
        self.run_engine()
        self.assertEqual(set(hook.trace_ids.mapped('state')), {'processing'})
        self.assertEqual(server.received, [], "the engine's batch queues the calls; the sender makes them")

        class Killed(BaseException):
            pass
        real_post, calls = outgoing.post, []

        def post_then_die(*args, **kwargs):
            status = real_post(*args, **kwargs)
            calls.append(status)
            if len(calls) == 2:
                raise Killed
            return status
        # Not assertRaises: Odoo's rolls back what the block did, the committed calls included.
        with patch.object(outgoing, 'post', post_then_die), contextlib.suppress(Killed):
            self.send_webhooks()
        self.env.invalidate_all()
        self.assertEqual(len(server.received), 2)
        self.assertEqual(len(hook.trace_ids.filtered(lambda trace: trace.state == 'done')), 1, "the first call was committed")
        self.run_flows()
        self.assertEqual(set(hook.trace_ids.mapped('state')), {'done'})
        delivered = [json.loads(body)['trace_id'] for _headers, body in server.received]
        self.assertEqual(len(delivered), 6, "5 calls, and the one in hand when killed again")
        self.assertEqual(sorted(set(delivered)), sorted(hook.trace_ids.ids))
        self.assertEqual(delivered[1], delivered[2], "only the call in hand was repeated")

    def test_webhook_url_is_managers_only(self):
        """ The URL may carry credentials: a plain Marketing Automation user reads neither it nor the secret. """
        _flow, hook = self.webhook_flow('https://hooks.example.com/mautomate')
        hook.with_user(self.manager).webhook_url = 'https://user:pass@hooks.example.com/mautomate?key=k'
        self.assertEqual(hook.with_user(self.manager).webhook_url, 'https://user:pass@hooks.example.com/mautomate?key=k')
        as_user = hook.with_user(self.marketer)
        self.assertEqual(as_user.name, 'hook', "the user still reads the step")
        for field in ('webhook_url', 'webhook_secret'):
            with self.subTest(field=field), self.assertRaises(AccessError):
                as_user.read([field])
        for model in (self.Flow, self.Step):
            arch = model.with_user(self.marketer).get_views([(False, 'form')])['views']['form']['arch']
            self.assertNotIn('webhook_url', arch)
        self.assertNotIn('webhook_url', self.Step.with_user(self.marketer).fields_get())
