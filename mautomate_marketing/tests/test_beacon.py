import json
import random
import string
import time

from odoo.tests import tagged

from .common import MautomateHttpCase

TRACK = '/mautomate/track'
API = '/mautomate/api/v1/events'


def random_json_value(rng, depth=0):
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -2**70, rng.randint(-10**6, 10**6)])
    if kind == 3:
        return rng.choice([1e308, -1e308, 1e-300, float('nan'), float('inf'), rng.uniform(-1e6, 1e6)])
    if kind == 4:
        return ''.join(rng.choice(string.printable + 'éß∑😀\x00\u202e\ud800') for _i in range(rng.randrange(0, 40)))
    if kind == 5:
        return rng.choice(['', 'page_view', 'http://', 'javascript:alert(1)', '<script>', "'; DROP TABLE x; --"])
    if kind == 6:
        return [random_json_value(rng, depth + 1) for _i in range(rng.randrange(0, 4))]
    return {f'k{i}': random_json_value(rng, depth + 1) for i in range(rng.randrange(0, 4))}


def not_in(rng, allowed):
    """ A random JSON value that is not one of the allowed strings. """
    while True:
        value = random_json_value(rng)
        if not (isinstance(value, str) and value in allowed):
            return value


class Fuzzer:
    """ Bodies made from a valid one by one mutation that must make it invalid. """

    def __init__(self, seed, valid_body, event_breakers, body_breakers):
        self.rng = random.Random(seed)
        self.valid_body = valid_body
        self.event_breakers = event_breakers
        self.body_breakers = body_breakers

    def body(self):
        rng = self.rng
        body = json.loads(json.dumps(self.valid_body()))
        events = body.get('events', [body])
        for event in events:  # noise that must not matter
            if rng.random() < 0.3:
                event[f'extra_{rng.randrange(5)}'] = random_json_value(rng)
        choice = rng.randrange(10)
        if choice < 5:
            rng.choice(self.event_breakers)(rng, rng.choice(events))
        elif choice < 7:
            rng.choice(self.body_breakers)(rng, body)
        elif choice == 7:
            text = json.dumps(body)
            return text[:rng.randrange(len(text))].encode()
        elif choice == 8:
            return bytes(rng.randrange(256) for _i in range(rng.randrange(1, 200)))
        else:
            return rng.choice([b'[' * 50000, b'{"events": ' + b'x' * 70000 + b'}', b'"just a string"', b'null', b'',
                               '{"vid": "\ud800"}'.encode('utf-8', 'surrogatepass')])
        return json.dumps(body).encode()


def set_key(key, value_maker):
    def breaker(rng, item):
        item[key] = value_maker(rng)
    return breaker


def remove_key(key):
    def breaker(rng, item):
        del item[key]
    return breaker


COMMON_EVENT_BREAKERS = [
    set_key('url', lambda rng: rng.choice([123, ['https://x'], 'ftp://example.com/file', 'example.com/page', 'javascript:x()', '\x00'])),
    set_key('value', lambda rng: rng.choice(['12', True, [1], {'v': 1}, float('nan'), float('inf'), 1e16])),
    set_key('name', lambda rng: rng.choice([0, 1.5, True, ['x'], {'n': 'x'}, 'nul\x00char'])),
]


@tagged('post_install', '-at_install')
class TestBeacon(MautomateHttpCase):

    def beacon(self, **overrides):
        return {'vid': 'a1' * 16, 'events': [{'type': 'page_view', 'url': 'https://shop.example.com/pricing',
                                               'name': 'Pricing', 'ts': int(time.time() * 1000)}], **overrides}

    def test_beacon_stores_events(self):
        body = self.beacon(events=[
            {'type': 'page_view', 'url': 'https://shop.example.com/pricing', 'name': 'Pricing', 'ts': int(time.time() * 1000)},
            {'type': 'cta_click', 'url': 'https://shop.example.com/pricing', 'name': 'Book a demo'},
            {'type': 'download', 'url': 'https://shop.example.com/brochure.pdf', 'name': 'brochure.pdf'},
        ])
        response = self.url_open(TRACK, data=json.dumps(body), headers={'Content-Type': 'text/plain;charset=UTF-8',
                                                                         'Origin': 'https://shop.example.com'})
        self.assertEqual(response.status_code, 202, response.text)
        self.assertEqual(response.json(), {'stored': 3})
        self.assertEqual(response.headers.get('Access-Control-Allow-Origin'), '*')
        self.assertNotIn('session_id', response.cookies)
        events = self.events()
        self.assertEqual(sorted(events.mapped('event_type')), ['cta_click', 'download', 'page_view'])
        self.assertEqual(set(events.mapped('source')), {'tracker'})
        self.assertEqual(set(events.mapped('anonymous_id')), {'a1' * 16})

    def test_beacon_of_a_known_browser_reaches_the_contact(self):
        partner = self.env['res.partner'].create({'name': 'Ann', 'email': 'ann@example.com'})
        # Proven by a signed mail link's click (an event naming the browser and the contact alone is a claim).
        self.env['mautomate.proven.browser']._prove('a1' * 16, partner, 'mail')
        self.assertEqual(self.post_json(TRACK, self.beacon()).status_code, 202)
        self.assertEqual(self.events([('event_type', '=', 'page_view')]).partner_id, partner)

    def test_cors_preflight(self):
        response = self.opener.options(self.base_url() + TRACK, headers={
            'Origin': 'https://shop.example.com', 'Access-Control-Request-Method': 'POST'})
        self.assertEqual(response.status_code, 204)
        self.assertEqual(response.headers.get('Access-Control-Allow-Origin'), '*')

    def test_invalid_beacons(self):
        cases = [
            (b'not json', 400, 'body is not valid JSON'),
            (b'\xff\xfe', 400, 'body is not valid JSON'),
            (b'[' * 60000, 400, 'body is not valid JSON'),
            (b'"text"', 400, 'body must be a JSON object'),
            (self.beacon(vid='short'), 422, "'vid' must be 32 lowercase hex characters"),
            (self.beacon(vid='A1' * 16), 422, "'vid' must be 32 lowercase hex characters"),
            (self.beacon(events={'type': 'page_view'}), 422, "'events' must be a non-empty list"),
            (self.beacon(events=['page_view']), 422, 'each event must be a JSON object'),
            (self.beacon(events=[{'type': 'custom'}]), 422, 'unknown event type; allowed: cta_click, download, link_click, page_view'),
            (self.beacon(events=[{'type': 'page_view', 'ts': -5}]), 422, 'event time is out of range'),
            (self.beacon(events=[{'type': 'page_view', 'ts': 'now'}]), 422, "'ts' must be a finite number"),
            (self.beacon(events=[{'type': 'page_view'}] * 101), 413, 'at most 100 events per request'),
            (b'{"vid": "' + b'a' * 70000 + b'"}', 413, 'body larger than 65536 bytes'),
        ]
        for body, status, reason in cases:
            with self.subTest(body=str(body)[:60]):
                response = self.post_json(TRACK, body)
                self.assertEqual(response.status_code, status, response.text)
                self.assertEqual(response.json(), {'error': reason})
        # one bad event refuses the whole batch
        mixed = self.beacon(events=[{'type': 'page_view', 'url': 'https://ok.example.com'}, {'type': 'nope'}])
        self.assertEqual(self.post_json(TRACK, mixed).status_code, 422)
        self.assertFalse(self.events())
        self.assertEqual(self.url_open(TRACK).status_code, 405)

    def test_fuzzed_payloads_get_4xx_and_store_nothing(self):
        """ 10,000 invalid bodies, half to the beacon endpoint, half to the API. """
        partner = self.env['res.partner'].create({'name': 'Fuzz Target', 'email': 'fuzz@example.com'})
        key = self.env['mautomate.api.key'].create({'name': 'Fuzz'})
        token = key.action_generate_token()['context']['default_token']
        # Thousands of beacons a minute from one address: this tests validation, not the per-IP rate limit.
        self.env['ir.config_parameter'].set_param('mautomate_marketing.rate_limit_track', 0)
        now_ms = int(time.time() * 1000)
        beacon_fuzzer = Fuzzer(20261123, lambda: self.beacon(), [
            set_key('type', lambda rng: not_in(rng, {'page_view', 'cta_click', 'download', 'link_click'})),
            set_key('ts', lambda rng: rng.choice([-1, 0, now_ms + 3 * 86400000, 1e20, 'yesterday', True, [now_ms]])),
            *COMMON_EVENT_BREAKERS,
        ], [
            set_key('vid', lambda rng: rng.choice([not_in(rng, set()), 'ab' * rng.choice([1, 15, 17]), 'AB' * 16])),
            set_key('events', lambda rng: rng.choice([[], {}, 'page_view', None, [1], [[{}]], [{'type': 'page_view'}] * 101])),
            remove_key('vid'),
        ])
        api_fuzzer = Fuzzer(11232026, lambda: {'partner_id': partner.id, 'name': 'Video watched', 'value': 30}, [
            set_key('type', lambda rng: not_in(rng, {'custom', 'page_view', 'form_submit', 'link_click', 'download', 'cta_click'})),
            set_key('partner_id', lambda rng: rng.choice([0, -3, '5', 2**40, True, 1.5, [partner.id], 2**31 - 1])),
            set_key('email', lambda rng: rng.choice(['nobody', '@', 'a@', 12, ['x@example.com'], 'x' * 400])),
            set_key('occurred_at', lambda rng: rng.choice(['', 'tomorrow', '2999-01-01', '1900-01-01T00:00:00', 20260101, '2026-13-45'])),
            set_key('payload', lambda rng: rng.choice([[], 'text', 5, {'big': 'y' * 5000}, {'n': float('nan')}, {'nul': 'a\x00b'}])),
            set_key('name', lambda rng: rng.choice(['lone \ud800 surrogate', ''])),
            remove_key('name'),
            *COMMON_EVENT_BREAKERS,
        ], [
            set_key('events', lambda rng: rng.choice([[], 'x', [None], [{}], [{'partner_id': partner.id, 'name': 'x'}] * 101])),
        ])
        partner_count = self.env['res.partner'].search_count([])
        statuses = {}
        for index in range(10000):
            path, fuzzer = (TRACK, beacon_fuzzer) if index % 2 else (API, api_fuzzer)
            body = fuzzer.body()
            response = self.opener.post(self.base_url() + path, data=body, headers={'Authorization': f'Bearer {token}'}, timeout=12)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            answer = f"{path} answered {response.status_code} {response.text[:200]!r} to {body[:200]!r}"
            self.assertTrue(400 <= response.status_code < 500, answer)
            self.assertEqual(response.headers.get('Content-Type'), 'application/json; charset=utf-8', answer)
            reason = response.json()['error']
            self.assertTrue(isinstance(reason, str) and 0 < len(reason) <= 120, reason)
        self.assertFalse(self.events(), "nothing from a bad request is stored")
        self.assertEqual(self.env['res.partner'].search_count([]), partner_count)
        self.assertEqual(key.event_count, 0)
        self.assertGreater(len(statuses), 2, statuses)
