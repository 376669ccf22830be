import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from lxml import etree

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import TransactionCase, tagged
from odoo.tests.common import HOST
from odoo.tools import SQL, config, safe_eval

from .common import MautomateHttpCase, leave_database_as_found

API = '/mautomate/api/v1/events'


@tagged('post_install', '-at_install')
class TestEventApi(MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.key = self.env['mautomate.api.key'].create({'name': 'Support desk'})
        self.token = self.key.action_generate_token()['context']['default_token']

    def post_event(self, body, token=None):
        return self.post_json(API, body, headers={'Authorization': f'Bearer {token or self.token}'})

    def test_token_is_stored_hashed(self):
        self.assertTrue(self.token.startswith(f'mak_{self.key.key_prefix}_'))
        self.assertNotIn(self.token, self.key.sudo().key_hash)
        self.assertEqual(self.env['mautomate.api.key']._authenticate(self.token), (self.key, 'ok'))

    def test_the_scheme_name_is_case_insensitive(self):
        body = {'email': 'ann@example.com', 'name': 'Lower case'}
        response = self.post_json(API, body, headers={'Authorization': f'bearer {self.token}'})
        self.assertEqual(response.status_code, 201, "RFC 7235")

    def test_missing_wrong_and_revoked_tokens(self):
        body = {'email': 'ann@example.com', 'name': 'Video watched'}
        missing = self.post_json(API, body)
        self.assertEqual(missing.status_code, 401)
        self.assertEqual(missing.json(), {'error': 'missing or invalid API token'})
        self.assertIn('Bearer', missing.headers['WWW-Authenticate'])
        self.assertEqual(self.post_json(API, body, headers={'Authorization': self.token}).status_code, 401, "scheme is required")
        self.assertEqual(self.post_json(API, body, headers={'Authorization': f'Basic {self.token}'}).status_code, 401)
        self.assertEqual(self.post_event(body, token=self.token[:-2] + 'xx').status_code, 401)
        self.assertEqual(self.post_event(body, token='mak_nothere_secret').status_code, 401)
        self.assertEqual(self.post_event(body, token='garbage').status_code, 401)

        old_token = self.token
        self.token = self.key.action_generate_token()['context']['default_token']
        self.assertEqual(self.post_event(body, token=old_token).status_code, 401, "a replaced token stops working")

        self.key.action_revoke()
        revoked = self.post_event(body)
        self.assertEqual(revoked.status_code, 403)
        self.assertEqual(revoked.json(), {'error': 'this API token was revoked'})
        self.assertFalse(self.events(), "nothing is stored from refused requests")

    def test_custom_event_for_a_new_contact(self):
        response = self.post_event({
            'email': 'Parcel Person <parcel@example.com>', 'contact_name': 'Pat Parcel',
            'name': 'Parcel delivered', 'value': 1, 'payload': {'carrier': 'DHL', 'tracking': 'JD0001'},
            'occurred_at': '2026-11-20T10:30:00+01:00', 'url': 'https://shop.example.com/orders/42'})
        self.assertEqual(response.status_code, 201, response.text)
        event = self.events([('id', 'in', response.json()['ids'])])
        self.assertRecordValues(event, [{
            'event_type': 'custom', 'source': 'api', 'name': 'Parcel delivered', 'value': 1.0,
            'payload': {'carrier': 'DHL', 'tracking': 'JD0001'}, 'url': 'https://shop.example.com/orders/42',
        }])
        self.assertEqual(str(event.occurred_at), '2026-11-20 09:30:00')
        self.assertRecordValues(event.partner_id, [{'name': 'Pat Parcel', 'email': 'parcel@example.com'}])
        self.assertEqual(event.api_key_id, self.key, "the event records which key sent it")
        self.assertEqual(event.payload_text, '{\n  "carrier": "DHL",\n  "tracking": "JD0001"\n}', "the form shows the payload")
        self.key.invalidate_recordset()
        self.assertEqual(self.key.event_count, 1)
        self.assertEqual(self.key.last_used_at, event.create_date)
        self.assertEqual(self.env['mautomate.api.key'].create({'name': 'Unused'}).event_count, 0)

    def test_body_is_json_whatever_the_content_type(self):
        """ The README's curl example: `curl -d` declares a form, other clients declare nothing or text. """
        body = json.dumps({'email': 'ann@example.com', 'name': 'Q&A + demo=yes', 'payload': {'video': 'product-tour'}})
        for content_type in ('application/x-www-form-urlencoded', 'text/plain', None):
            with self.subTest(content_type=content_type):
                headers = {'Authorization': f'Bearer {self.token}'}
                if content_type:
                    headers['Content-Type'] = content_type
                response = self.opener.post(self.base_url() + API, data=body.encode(), headers=headers, timeout=12)
                self.assertEqual(response.status_code, 201, response.text)
                event = self.events([('id', 'in', response.json()['ids'])])
                self.assertRecordValues(event, [{'name': 'Q&A + demo=yes', 'payload': {'video': 'product-tour'}}])
        self.assertEqual(len(self.events()), 3)

    def test_key_form_buttons(self):
        """ No Revoke on an unsaved key; the "replaces the current token" warning only once a token exists. """
        arch = self.env['mautomate.api.key'].get_views([(False, 'form')])['views']['form']['arch']
        buttons = etree.fromstring(arch).xpath('//header/button')

        def visible_buttons(key):
            values = {'id': key.id or False, 'active': key.active, 'has_token': key.has_token}
            return {(button.get('name'), bool(button.get('confirm')))
                    for button in buttons if not safe_eval.safe_eval(button.get('invisible', 'False'), values)}

        new_key = self.env['mautomate.api.key'].new({'name': 'Draft'})
        self.assertEqual(visible_buttons(new_key), set())
        key = self.env['mautomate.api.key'].create({'name': 'Webshop'})
        self.assertFalse(key.has_token)
        self.assertEqual(visible_buttons(key), {('action_generate_token', False), ('action_revoke', True)})
        key.action_generate_token()
        self.assertTrue(key.has_token)
        self.assertEqual(visible_buttons(key), {('action_generate_token', True), ('action_revoke', True)})
        key.action_revoke()
        self.assertEqual(visible_buttons(key), set())

    def test_batch_for_known_contacts(self):
        ann = self.env['res.partner'].create({'name': 'Ann', 'email': 'ann@example.com'})
        response = self.post_event({'events': [
            {'partner_id': ann.id, 'name': 'Support contract expires'},
            {'email': 'ANN@example.com', 'name': 'Video watched 30 s', 'value': 30},
        ]})
        self.assertEqual(response.status_code, 201, response.text)
        self.assertEqual(response.json()['stored'], 2)
        self.assertEqual(self.events().partner_id, ann)
        self.assertEqual(self.env['res.partner'].search_count([('email_normalized', '=', 'ann@example.com')]), 1)

    def test_unknown_partner_stores_nothing(self):
        partners_before = self.env['res.partner'].search_count([])
        response = self.post_event({'events': [
            {'email': 'brand-new@example.com', 'name': 'Signed up'},
            {'partner_id': 2**31 - 1, 'name': 'Ghost'},
        ]})
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.json(), {'error': f'partner_id {2**31 - 1} names no contact that takes API events'})
        self.assertFalse(self.events())
        self.assertEqual(self.env['res.partner'].search_count([]), partners_before)

    def test_protected_contacts_are_refused_as_unknown_ids_are(self):
        """ A key posts events for the company's own contact and an employee's: refused with the answer an id that
        names nobody gets, so that it neither poisons their history nor learns which ids exist. """
        employee = self.env['res.users'].create({
            'name': 'Erin Employee', 'login': 'erin.api@example.com', 'email': 'erin.api@example.com',
            'groups_id': [(6, 0, [self.env.ref('base.group_user').id])]})
        self.env.cr.execute("SELECT COALESCE(MAX(id), 0) + 1000 FROM res_partner")
        unknown_id = self.env.cr.fetchone()[0]
        partners_before = self.env['res.partner'].search_count([])
        answers = []
        for partner_id in (self.env.company.partner_id.id, employee.partner_id.id, unknown_id):
            response = self.post_event({'partner_id': partner_id, 'name': 'Poison'})
            answers.append((response.status_code, response.json()['error'].replace(str(partner_id), '<id>')))
        self.assertEqual(answers, [(422, 'partner_id <id> names no contact that takes API events')] * 3)
        self.env.company.partner_id.email = 'company.api@example.com'
        for email in ('Erin.API@example.com', 'Company.API@example.com'):
            with self.subTest(email=email):
                response = self.post_event({'events': [
                    {'email': 'someone-new@example.com', 'name': 'Signed up'}, {'email': email, 'name': 'Poison'}]})
                self.assertEqual(response.status_code, 422, response.text)
                self.assertEqual(response.json(), {'error': "'email' names no contact that takes API events"})
        self.assertFalse(self.events())
        self.assertEqual(self.env['res.partner'].search_count([]), partners_before, "nothing created, not even the new e-mail's")
        self.assertEqual(self.post_event({'email': 'someone-new@example.com', 'name': 'Signed up'}).status_code, 201)

    def test_opted_out_contact_is_not_tracked(self):
        ann = self.env['res.partner'].create({'name': 'Ann', 'email': 'ann@example.com', 'mautomate_no_tracking': True})
        response = self.post_event({'partner_id': ann.id, 'name': 'Video watched'})
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()['stored'], 0)

    def test_invalid_events(self):
        cases = [
            (b'{"name": ', 400, 'body is not valid JSON'),
            ([1, 2], 400, 'body must be a JSON object'),
            ({'name': 'No contact'}, 422, "each event needs an 'email' or a 'partner_id'"),
            ({'email': 'not-an-email', 'name': 'x'}, 422, "'email' is not an e-mail address"),
            ({'partner_id': '7', 'name': 'x'}, 422, "'partner_id' must be a positive integer"),
            ({'partner_id': True, 'name': 'x'}, 422, "'partner_id' must be a positive integer"),
            ({'partner_id': 1}, 422, "'name' is required"),
            ({'partner_id': 1, 'name': 'x', 'type': 'email_open'}, 422, None),
            ({'partner_id': 1, 'name': 'x', 'value': 'ten'}, 422, "'value' must be a finite number"),
            ({'partner_id': 1, 'name': 'x', 'payload': [1]}, 422, "'payload' must be a JSON object"),
            ({'partner_id': 1, 'name': 'x', 'payload': {'big': 'x' * 5000}}, 413, None),
            ({'partner_id': 1, 'name': 'x', 'occurred_at': 'yesterday'}, 422, None),
            ({'partner_id': 1, 'name': 'x', 'occurred_at': '2999-01-01T00:00:00'}, 422, 'event time is out of range'),
            ({'partner_id': 1, 'name': 'x', 'url': 'javascript:alert(1)'}, 422, "'url' must be an http(s) URL"),
            ({'events': []}, 422, "'events' must be a non-empty list"),
            ({'events': [{'partner_id': 1, 'name': 'x'}] * 101}, 413, 'at most 100 events per request'),
            (b'{"a": "' + b'x' * 70000 + b'"}', 413, None),
        ]
        for body, status, reason in cases:
            with self.subTest(body=str(body)[:60]):
                response = self.post_event(body)
                self.assertEqual(response.status_code, status, response.text)
                if reason:
                    self.assertEqual(response.json()['error'], reason)
        self.assertFalse(self.events())
        self.assertEqual(self.url_open(API).status_code, 405, "GET is not allowed")


@tagged('post_install', '-at_install')
class TestEventApiConcurrency(TransactionCase):
    """ Four clients posting with one key at the same instant, through the test server.

    HttpCase would run the requests one at a time on its test cursor. Here the registry stays out of
    test mode, so each request thread of the server takes a real cursor and runs in its own
    transaction, retried by Odoo on serialization failures as in production. The key and contact
    they need are committed first, and deleted afterwards.
    """

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.registry.test_cr, "requests must get real cursors, not the test's")
        # The test runner holds the registry lock for the whole run: lift it, as HttpCase's test mode does.
        self.patch(Registry, '_lock', DummyRLock())
        leave_database_as_found(self)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            key = env['mautomate.api.key'].create({'name': 'Parallel webshop'})
            self.token = key.action_generate_token()['context']['default_token']
            self.key_id = key.id
            self.partner_id = env['res.partner'].create({'name': 'Parallel Pat', 'email': 'parallel-pat@example.com'}).id
            env.flush_all()
        self.addCleanup(self._delete_committed_rows)

    def _delete_committed_rows(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM mautomate_event WHERE api_key_id = %s OR partner_id = %s", [self.key_id, self.partner_id])
            env = api.Environment(cr, SUPERUSER_ID, {})
            env['mautomate.api.key'].browse(self.key_id).unlink()
            env['res.partner'].browse(self.partner_id).unlink()

    def post_in_parallel(self, trials=5):
        """ 4 clients post 3 events each of one contact at the same instant, `trials` times; no request is retried. """
        url = f'http://{HOST}:{config["http_port"]}{API}'
        barrier = threading.Barrier(4)

        def post(client):
            body = json.dumps({'events': [{'partner_id': self.partner_id, 'name': f'Order {client}-{line}', 'value': line}
                                          for line in range(3)]})
            barrier.wait(timeout=30)
            return requests.post(url, data=body, headers={'Authorization': f'Bearer {self.token}'}, timeout=60)

        # Odoo logs each request it retries after a serialization failure here (at 20: Odoo renames level 25 'INFO').
        with self.assertNoLogs('odoo.service.model', logging.INFO), ThreadPoolExecutor(4) as pool:
            for _trial in range(trials):
                responses = list(pool.map(post, range(4)))
                self.assertEqual([response.status_code for response in responses], [201] * 4, [r.text for r in responses])

    def row_version(self, table, record_id):
        with self.registry.cursor() as cr:
            cr.execute(SQL("SELECT xmin::text FROM %s WHERE id = %s", SQL.identifier(table), record_id))
            return cr.fetchone()[0]

    def test_parallel_posts_with_one_key(self):
        key_version = self.row_version('mautomate_api_key', self.key_id)
        self.post_in_parallel()
        self.assertEqual(self.row_version('mautomate_api_key', self.key_id), key_version, "requests never write the key's row")
        with self.registry.cursor() as cr:
            key = api.Environment(cr, SUPERUSER_ID, {})['mautomate.api.key'].browse(self.key_id)
            self.assertEqual(key.event_count, 60)
            self.assertTrue(key.last_used_at)

    def test_parallel_scored_events_of_one_contact_never_wait_for_each_other(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            rule = env['mautomate.score.rule'].create({'name': 'Ordered', 'rule_type': 'behaviour', 'event_type': 'custom',
                                                       'name_pattern': 'Order *', 'points': 10})
            half_life = env['ir.config_parameter'].get_param('mautomate_marketing.score_half_life')
            env['ir.config_parameter'].set_param('mautomate_marketing.score_half_life', 0)
            rule_id = rule.id
        self.addCleanup(self._delete_rule, rule_id, half_life)
        partner_version = self.row_version('res_partner', self.partner_id)
        self.post_in_parallel(trials=3)
        self.assertEqual(self.row_version('res_partner', self.partner_id), partner_version, "requests never write the contact")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env['mautomate.scoring']._cron_refresh_queue()
            self.assertEqual(env['mautomate.score.entry'].search_count([('partner_id', '=', self.partner_id)]), 36)
            self.assertEqual(env['res.partner'].browse(self.partner_id).mautomate_score, 360)

    def _delete_rule(self, rule_id, half_life):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env['mautomate.score.rule'].browse(rule_id).unlink()
            # The value found, or none as on a fresh database.
            env['ir.config_parameter'].set_param('mautomate_marketing.score_half_life', half_life or False)
            cr.execute("""DELETE FROM mautomate_score_queue
                           WHERE partner_id = %(id)s OR event_id IN (SELECT id FROM mautomate_event WHERE partner_id = %(id)s)""",
                       {'id': self.partner_id})
