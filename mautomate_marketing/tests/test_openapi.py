import json
import re
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from odoo import fields
from odoo.tests import tagged
from odoo.tools import file_open

from ..controllers.identify import identify_signature
from ..tools import event_validation
from .common import MautomateHttpCase

API = '/mautomate/api/v1/events'
TRACK = '/mautomate/track'
IDENTIFY = '/mautomate/identify'
OPENAPI = '/mautomate/api/v1/openapi.json'
JSON_TYPES = {'object': dict, 'array': list, 'string': str, 'integer': int, 'number': (int, float), 'boolean': bool}


class KeyRecorder(dict):
    """ A JSON object that notes every key the validator reads. """

    def __init__(self, values, seen):
        super().__init__(values)
        self.seen = seen

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


def resolve(document, schema):
    while '$ref' in schema:
        schema = document['components']['schemas'][schema['$ref'].rpartition('/')[2]]
    return schema


def schema_errors(document, schema, value, path='$'):
    """ How ``value`` breaks ``schema``, for the JSON Schema keywords the description uses. """
    schema = resolve(document, schema)
    if 'oneOf' in schema:
        matching = [option for option in schema['oneOf'] if not schema_errors(document, option, value, path)]
        return [] if len(matching) == 1 else [f"{path}: matches {len(matching)} of oneOf"]
    errors = []
    if 'anyOf' in schema and all(schema_errors(document, option, value, path) for option in schema['anyOf']):
        errors.append(f"{path}: matches none of anyOf")
    expected = schema.get('type')
    if expected and (not isinstance(value, JSON_TYPES[expected]) or (isinstance(value, bool) and expected != 'boolean')):
        return [*errors, f"{path}: not of type {expected}"]
    if 'enum' in schema and value not in schema['enum']:
        errors.append(f"{path}: not one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get('properties', {})
        errors += [f"{path}: '{key}' is missing" for key in schema.get('required', ()) if key not in value]
        if schema.get('additionalProperties') is False:
            errors += [f"{path}: '{key}' is not documented" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(document, properties[key], item, f"{path}.{key}")
    elif isinstance(value, list):
        if not schema.get('minItems', 0) <= len(value) <= schema.get('maxItems', len(value)):
            errors.append(f"{path}: {len(value)} items")
        for index, item in enumerate(value):
            errors += schema_errors(document, schema['items'], item, f"{path}[{index}]")
    elif isinstance(value, str):
        if not schema.get('minLength', 0) <= len(value) <= schema.get('maxLength', len(value)):
            errors.append(f"{path}: length {len(value)}")
        if 'pattern' in schema and not re.search(schema['pattern'], value):
            errors.append(f"{path}: does not match {schema['pattern']}")
    elif isinstance(value, (int, float)):
        if not (schema.get('minimum', value) <= value <= schema.get('maximum', value)
                and schema.get('exclusiveMinimum', value - 1) < value < schema.get('exclusiveMaximum', value + 1)):
            errors.append(f"{path}: {value} out of range")
    return errors


@tagged('post_install', '-at_install')
class TestOpenApi(MautomateHttpCase):
    """ The OpenAPI description against the implementation: a drift on either side fails here. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with file_open('mautomate_marketing/controllers/openapi.json') as file:
            cls.doc = json.load(file)
        cls.schemas = cls.doc['components']['schemas']
        cls.partner = cls.env['res.partner'].create({'name': 'Documented Dora', 'email': 'dora@example.com'})

    def setUp(self):
        super().setUp()
        self.key = self.env['mautomate.api.key'].create({'name': 'Docs'})
        self.token = self.key.action_generate_token()['context']['default_token']
        self.statuses = defaultdict(set)

    def call(self, path, body, token=None):
        """ POST ``body`` and check the answer against the description: status, headers, JSON body. """
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.opener.post(self.base_url() + path, data=data, timeout=12,
                                    headers={'Authorization': f'Bearer {token or self.token}'} if path == API else {})
        documented = self.doc['paths'][path]['post']['responses'].get(str(response.status_code))
        self.assertTrue(documented, f"{path} answered an undocumented {response.status_code}: {response.text[:200]}")
        self.assertEqual(response.headers.get('Content-Type'), 'application/json; charset=utf-8')
        self.assertEqual(schema_errors(self.doc, documented['content']['application/json']['schema'], response.json()), [],
                         f"{path} {response.status_code} {response.text[:200]}")
        for header in documented.get('headers', {}):
            self.assertIn(header, response.headers)
        self.statuses[path].add(response.status_code)
        return response

    def api_event(self, **values):
        return {'partner_id': self.partner.id, 'name': 'Documented', **values}

    def beacon(self, *events, vid='b2' * 16):
        return {'vid': vid, 'events': list(events) or [{'type': 'page_view'}]}

    def identify_body(self, email='dora@example.com', **values):
        secret = self.env['res.config.settings']._mautomate_get_identify_secret()
        timestamp = int(time.time())
        signature = identify_signature(secret, email, 'c3' * 16, timestamp)
        return {'vid': 'c3' * 16, 'email': email, 'timestamp': timestamp, 'signature': signature, **values}

    def stored(self, response):
        return self.events([('id', 'in', response.json()['ids'])])

    def test_description_is_served(self):
        response = self.url_open(OPENAPI)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers['Content-Type'], 'application/json; charset=utf-8')
        self.assertEqual(response.headers.get('Access-Control-Allow-Origin'), '*')
        self.assertEqual(response.json(), {**self.doc, 'servers': [{'url': self.base_url()}]})
        self.assertTrue(response.json()['openapi'].startswith('3.'))
        self.assertEqual(set(self.doc['paths']), {API, TRACK, IDENTIFY})

    def test_every_documented_status_is_produced(self):
        revoked = self.env['mautomate.api.key'].create({'name': 'Revoked'})
        revoked_token = revoked.action_generate_token()['context']['default_token']
        revoked.action_revoke()
        requests_by_status = {
            API: [
                (201, self.api_event(), None),
                (400, b'{"name": ', None),
                (401, self.api_event(), 'mak_unknown_token'),
                (403, self.api_event(), revoked_token),
                (413, {'events': [self.api_event()] * 101}, None),
                (422, self.api_event(name=None), None),
            ],
            TRACK: [
                (202, self.beacon(), None),
                (400, b'[1]', None),
                (413, self.beacon(*[{'type': 'page_view'}] * 101), None),
                (413, self.beacon(vid='a' * 2 * 1024 * 1024), None),
                (422, self.beacon(vid='nope'), None),
                (429, self.beacon(), None),
            ],
            IDENTIFY: [
                (200, self.identify_body(), None),
                (400, b'{"vid": ', None),
                (403, self.identify_body(signature='forged'), None),
                (413, self.identify_body(email='a' * 2 * 1024 * 1024), None),
                (422, self.identify_body(vid='nope'), None),
                (429, self.identify_body(), None),
            ],
        }
        requests_by_status[API].append((413, {'name': 'x' * 2 * 1024 * 1024}, None))
        for path, cases in requests_by_status.items():
            for status, body, token in cases:
                if status == 429:
                    # The limit is then below what this test has already sent from this address.
                    scope = 'track' if path == TRACK else 'identify'
                    self.env['ir.config_parameter'].set_param(f'mautomate_marketing.rate_limit_{scope}', 1)
                with self.subTest(path=path, status=status):
                    self.assertEqual(self.call(path, body, token).status_code, status)
            self.assertEqual(self.statuses[path], {int(status) for status in self.doc['paths'][path]['post']['responses']},
                             f"{path}: the statuses described are the statuses answered")

    def test_documented_examples_are_accepted(self):
        for path in (API, TRACK):
            content = self.doc['paths'][path]['post']['requestBody']['content']
            examples = [example['value'] for media in content.values() for example in media.get('examples', {}).values()]
            self.assertTrue(examples)
            for example in examples:
                self.assertEqual(schema_errors(self.doc, next(iter(content.values()))['schema'], example), [])
                self.assertIn(self.call(path, example).status_code, (201, 202))

    def test_response_fields_are_all_required(self):
        """ With additionalProperties false, call() then proves every documented answer field is present, and no other. """
        for name in ('ApiEventsStored', 'BeaconStored', 'Identified', 'Error'):
            schema = self.schemas[name]
            self.assertEqual(set(schema['required']), set(schema['properties']), name)
            self.assertIs(schema['additionalProperties'], False, name)

    def test_validator_reads_only_documented_fields(self):
        """ Every key the validators read is described, and every described key is read. """
        now = fields.Datetime.now()
        single, batch, batch_event = set(), set(), set()
        event_validation.validate_api_events(KeyRecorder({'email': 'ann@example.com', 'name': 'x'}, single), now)
        event_validation.validate_api_events(KeyRecorder(
            {'events': [KeyRecorder({'partner_id': 1, 'name': 'x'}, batch_event)]}, batch), now)
        self.assertEqual(single - {'events'}, set(self.schemas['ApiEvent']['properties']))
        self.assertEqual(batch, set(self.schemas['ApiEventBatch']['properties']))
        self.assertEqual(batch_event, set(self.schemas['ApiEvent']['properties']))

        beacon, beacon_event = set(), set()
        event_validation.validate_beacon(KeyRecorder(
            {'vid': 'a1' * 16, 'events': [KeyRecorder({'type': 'page_view'}, beacon_event)]}, beacon), now)
        self.assertEqual(beacon, set(self.schemas['Beacon']['properties']))
        self.assertEqual(beacon_event, set(self.schemas['BeaconEvent']['properties']))

    def test_documented_limits_are_the_code_constants(self):
        api_event, beacon_event = self.schemas['ApiEvent']['properties'], self.schemas['BeaconEvent']['properties']
        self.assertEqual(set(api_event['type']['enum']), event_validation.API_EVENT_TYPES)
        self.assertEqual(set(beacon_event['type']['enum']), event_validation.BEACON_EVENT_TYPES)
        self.assertEqual(self.schemas['Beacon']['properties']['vid']['pattern'], event_validation.BROWSER_ID_PATTERN.pattern)
        for path in (API, TRACK):
            self.assertEqual(self.doc['paths'][path]['post']['x-max-body-bytes'], event_validation.MAX_BODY_BYTES)
        for schema in (self.schemas['ApiEventBatch'], self.schemas['Beacon']):
            self.assertEqual(schema['properties']['events']['maxItems'], event_validation.MAX_EVENTS_PER_REQUEST)
        self.assertEqual(api_event['payload']['x-max-bytes'], event_validation.MAX_PAYLOAD_BYTES)
        self.assertEqual(api_event['email']['maxLength'], event_validation.MAX_EMAIL_LENGTH)
        for properties in (api_event, beacon_event):
            self.assertEqual(properties['name']['x-truncated-to'], event_validation.MAX_NAME_LENGTH)
            self.assertEqual(properties['url']['x-truncated-to'], event_validation.MAX_URL_LENGTH)
            for key in ('ts', 'occurred_at'):
                self.assertEqual(properties[key]['x-max-age-days'], event_validation.MAX_EVENT_AGE.days)
                self.assertEqual(timedelta(hours=properties[key]['x-max-future-hours']), event_validation.MAX_CLOCK_SKEW)

    def test_every_documented_field_is_stored(self):
        def example(schema, key):
            return self.schemas[schema]['properties'][key]['examples'][0]

        new_email = f'new-{uuid.uuid4().hex[:8]}@example.com'
        # field -> (the event to send, how the stored event shows it)
        api_checks = {
            'name': ({}, lambda event, value: event.name == value),
            'type': ({}, lambda event, value: event.event_type == value),
            'email': ({'partner_id': None}, lambda event, value: event.partner_id.email_normalized == value),
            'partner_id': ({}, lambda event, value: event.partner_id == self.partner),
            'contact_name': ({'partner_id': None, 'email': new_email},
                             lambda event, value: event.partner_id.name == value and event.partner_id.email == new_email),
            'url': ({}, lambda event, value: event.url == value),
            'value': ({}, lambda event, value: event.value == value),
            'occurred_at': ({}, lambda event, value: event.occurred_at == self.utc(datetime.fromisoformat(value))),
            'ts': ({}, lambda event, value: event.occurred_at == self.utc(datetime.fromtimestamp(value / 1000, timezone.utc))),
            'payload': ({}, lambda event, value: event.payload == value and json.loads(event.payload_text) == value),
        }
        self.assertEqual(set(api_checks), set(self.schemas['ApiEvent']['properties']))
        for key, (base, check) in api_checks.items():
            with self.subTest(api_field=key):
                value = example('ApiEvent', key)
                body = {**self.api_event(**base), key: value if key != 'partner_id' else self.partner.id}
                response = self.call(API, {name: item for name, item in body.items() if item is not None})
                self.assertEqual(response.status_code, 201, response.text)
                event = self.stored(response)
                self.assertTrue(check(event, value), f"{key}={value!r} was not stored")
                self.assertEqual(event.api_key_id, self.key)

        beacon_checks = {
            'type': lambda event, value: event.event_type == value,
            'url': lambda event, value: event.url == value,
            'name': lambda event, value: event.name == value,
            'value': lambda event, value: event.value == value,
            'ts': lambda event, value: event.occurred_at == self.utc(datetime.fromtimestamp(value / 1000, timezone.utc)),
            'occurred_at': lambda event, value: event.occurred_at == self.utc(datetime.fromisoformat(value)),
        }
        self.assertEqual(set(beacon_checks), set(self.schemas['BeaconEvent']['properties']))
        for key, check in beacon_checks.items():
            with self.subTest(beacon_field=key):
                value = example('BeaconEvent', key)
                vid = uuid.uuid4().hex
                self.assertEqual(self.call(TRACK, self.beacon({'type': 'page_view', key: value}, vid=vid)).status_code, 202)
                event = self.events([('anonymous_id', '=', vid)])
                self.assertEqual(len(event), 1)
                self.assertTrue(check(event, value), f"{key}={value!r} was not stored")

    @staticmethod
    def utc(moment):
        return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment

    def test_documented_bounds_decide_acceptance(self):
        """ Values on both sides of each documented bound: refused exactly when the description says so. """
        refused = {400, 413, 422}
        api_probes = {
            'name': ['', 'x', 'x' * 300, 5, None],
            'type': [*self.schemas['ApiEvent']['properties']['type']['enum'], 'email_open', 'nope'],
            'email': ['a' * 308 + '@example.com', 'a' * 309 + '@example.com'],
            'partner_id': [self.partner.id, 0, -1, 2**31 - 1, 2**31, '7', True, 1.5, None],
            'url': ['https://x.example', 'HTTP://X.EXAMPLE/a', 'ftp://x.example', 'x.example', 'http:///x', 'https://' + 'a' * 3000],
            'value': [1e15, -1e15, 1e15 + 1, -1e15 - 1, 0, 'ten', True],
            'ts': [time.time() * 1000, 0, -5, 1e14, 'now'],
            'payload': [{}, {'a': [1, {'b': None}]}, [1], 'text', 5],
        }
        for key, values in api_probes.items():
            for value in values:
                with self.subTest(api_field=key, value=str(value)[:40]):
                    body = {**self.api_event(), key: value}
                    if key == 'email':
                        del body['partner_id']
                    errors = schema_errors(self.doc, self.schemas['ApiEvent'], {k: v for k, v in body.items() if v is not None})
                    response = self.call(API, body)
                    # An id in range that names no contact is refused as well: that is no bound.
                    unknown = response.status_code == 422 and 'names no contact' in response.json()['error']
                    self.assertEqual(response.status_code in refused and not unknown, bool(errors),
                                     f"{response.status_code} while the description says {errors}")
        beacon_probes = {
            'vid': ['a1' * 16, 'A1' * 16, 'a1' * 15, 'g' * 32, 5],
            'type': [*self.schemas['BeaconEvent']['properties']['type']['enum'], 'custom', None],
            'url': ['https://x.example', 'ftp://x.example', 'https://' + 'a' * 3000],
            'value': [1e15, 1e15 + 1, 'ten'],
            'ts': [time.time() * 1000, 0, 1e14],
        }
        for key, values in beacon_probes.items():
            for value in values:
                with self.subTest(beacon_field=key, value=str(value)[:40]):
                    body = self.beacon(vid=value) if key == 'vid' else self.beacon({'type': 'page_view', key: value})
                    if value is None:
                        del body['events'][0][key]
                    errors = schema_errors(self.doc, self.schemas['Beacon'], body)
                    status = self.call(TRACK, body).status_code
                    self.assertEqual(status in refused, bool(errors), f"{status} while the description says {errors}")
        for count in (0, 1, 100, 101):
            with self.subTest(events=count):
                body = {'events': [self.api_event()] * count}
                errors = schema_errors(self.doc, self.schemas['ApiEventBatch'], body)
                self.assertEqual(self.call(API, body).status_code in refused, bool(errors))

    def test_documented_extension_bounds(self):
        """ The bounds JSON Schema cannot say (x-...): cut lengths, byte sizes and time ranges. """
        api_event, beacon_event = self.schemas['ApiEvent']['properties'], self.schemas['BeaconEvent']['properties']
        for key in ('name', 'url'):
            length = api_event[key]['x-truncated-to']
            value = 'https://x.example/' + 'a' * length if key == 'url' else 'a' * (length + 10)
            event = self.stored(self.call(API, self.api_event(**{key: value})))
            self.assertEqual(event[key], value[:length])
            vid = uuid.uuid4().hex
            self.call(TRACK, self.beacon({'type': 'page_view', key: value}, vid=vid))
            self.assertEqual(self.events([('anonymous_id', '=', vid)])[key], value[:beacon_event[key]['x-truncated-to']])
        length = api_event['contact_name']['x-truncated-to']
        event = self.stored(self.call(API, self.api_event(partner_id=None, email=f'long-{uuid.uuid4().hex[:8]}@example.com',
                                                          contact_name='c' * (length + 10))))
        self.assertEqual(event.partner_id.name, 'c' * length)

        max_bytes = api_event['payload']['x-max-bytes']
        for size, status in ((max_bytes, 201), (max_bytes + 1, 413)):
            payload = {'p': 'x' * (size - len(json.dumps({'p': ''})))}
            self.assertEqual(len(json.dumps(payload)), size)
            self.assertEqual(self.call(API, self.api_event(payload=payload)).status_code, status)

        for path, body, accepted in ((API, self.api_event(), 201), (TRACK, self.beacon(), 202)):
            max_body = self.doc['paths'][path]['post']['x-max-body-bytes']
            for size, status in ((max_body, accepted), (max_body + 1, 413)):
                data = json.dumps({**body, 'padding': ''})
                data = json.dumps({**body, 'padding': 'x' * (size - len(data))}).encode()
                self.assertEqual(len(data), size)
                self.assertEqual(self.call(path, data).status_code, status)

        now = fields.Datetime.now()
        for properties, path in ((api_event, API), (beacon_event, TRACK)):
            max_age, max_ahead = timedelta(days=properties['ts']['x-max-age-days']), timedelta(hours=properties['ts']['x-max-future-hours'])
            for moment, accepted in ((now - max_age + timedelta(hours=1), True), (now - max_age - timedelta(hours=1), False),
                                     (now + max_ahead - timedelta(minutes=5), True), (now + max_ahead + timedelta(minutes=5), False)):
                ts = moment.replace(tzinfo=timezone.utc).timestamp() * 1000
                for key, value in (('ts', ts), ('occurred_at', moment.isoformat() + 'Z')):
                    with self.subTest(path=path, key=key, moment=moment):
                        vid = uuid.uuid4().hex
                        body = self.api_event(**{key: value}) if path == API else self.beacon({'type': 'page_view', key: value}, vid=vid)
                        response = self.call(path, body)
                        self.assertEqual(response.status_code < 300, accepted, response.text)
                        if accepted:
                            stored = self.stored(response) if path == API else self.events([('anonymous_id', '=', vid)])
                            if moment < now:
                                self.assertEqual(stored.occurred_at, moment)
                            else:
                                self.assertTrue(now <= stored.occurred_at <= fields.Datetime.now(), "a time ahead is stored as now")
