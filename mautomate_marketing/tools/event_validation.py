""" Turns untrusted beacon and API bodies into clean event values, or a 4xx with a short reason.

Nothing here touches the database: a request is validated whole before anything is stored.
"""
import json
import re
from datetime import datetime, timedelta, timezone

from odoo.tools import email_normalize

# Bounds shared by every source: longer text is cut, larger bodies and payloads are refused.
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 256
MAX_EMAIL_LENGTH = 320
MAX_PAYLOAD_BYTES = 4096
MAX_BODY_BYTES = 64 * 1024
BODY_TOO_LARGE = f"body larger than {MAX_BODY_BYTES} bytes"
# What werkzeug reads at most of a body whose length is not declared (chunked).
HARD_BODY_LIMIT = 1024 * 1024
MAX_EVENTS_PER_REQUEST = 100
BEACON_EVENT_TYPES = {'page_view', 'cta_click', 'download', 'link_click'}
API_EVENT_TYPES = {'custom', 'page_view', 'form_submit', 'link_click', 'download', 'cta_click'}
BROWSER_ID_PATTERN = re.compile(r'^[0-9a-f]{32}$')
MAX_CLOCK_SKEW = timedelta(days=1)
MAX_EVENT_AGE = timedelta(days=3650)


class EventValidationError(Exception):
    def __init__(self, reason, status=400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def parse_json_body(data):
    if len(data) > MAX_BODY_BYTES:
        raise EventValidationError(BODY_TOO_LARGE, 413)
    try:
        body = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EventValidationError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise EventValidationError("body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode('utf-8')
    except UnicodeEncodeError:
        raise EventValidationError("body contains invalid unicode") from None
    return body


def _text(item, key, max_length, required=False):
    value = item.get(key)
    if value is None or value == '':
        if required:
            raise EventValidationError(f"'{key}' is required", 422)
        return None
    if not isinstance(value, str):
        raise EventValidationError(f"'{key}' must be a string", 422)
    if '\x00' in value:
        raise EventValidationError(f"'{key}' contains a NUL character", 422)
    return value[:max_length]


def _url(item, key='url'):
    url = _text(item, key, MAX_URL_LENGTH)
    if url and not re.match(r'^https?://[^\s/]+', url, re.IGNORECASE):
        raise EventValidationError(f"'{key}' must be an http(s) URL", 422)
    return url


def _number(item, key):
    value = item.get(key)
    if value is None:
        return None
    # A chained comparison also refuses NaN and infinities, and never overflows on huge integers.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1e15 <= value <= 1e15:
        raise EventValidationError(f"'{key}' must be a finite number", 422)
    return float(value)


def _occurred_at(item, now):
    """ 'ts' in milliseconds since the epoch (beacons) or 'occurred_at' in ISO 8601 (API). """
    if item.get('ts') is not None:
        ts = _number(item, 'ts')
        moment = datetime.fromtimestamp(ts / 1000, timezone.utc).replace(tzinfo=None) if ts and 0 < ts < 1e14 else None
    elif item.get('occurred_at') is not None:
        text = item['occurred_at']
        invalid = EventValidationError("'occurred_at' must be an ISO 8601 date-time", 422)
        if not isinstance(text, str):
            raise invalid
        try:
            moment = datetime.fromisoformat(text[:40].replace('Z', '+00:00'))
            if moment.tzinfo:
                moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        except (ValueError, OverflowError):
            raise invalid from None
    else:
        return now
    if moment is None or not (now - MAX_EVENT_AGE <= moment <= now + MAX_CLOCK_SKEW):
        raise EventValidationError("event time is out of range", 422)
    return min(moment, now)


def _payload(item):
    payload = item.get('payload')
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise EventValidationError("'payload' must be a JSON object", 422)
    try:
        text = json.dumps(payload, allow_nan=False)
    except ValueError:
        raise EventValidationError("'payload' must not contain NaN or Infinity", 422) from None
    if len(text) > MAX_PAYLOAD_BYTES:
        raise EventValidationError(f"'payload' larger than {MAX_PAYLOAD_BYTES} bytes", 413)
    if '\\u0000' in text:
        raise EventValidationError("'payload' contains a NUL character", 422)
    return payload


def _event_list(body):
    events = body.get('events')
    if not isinstance(events, list) or not events:
        raise EventValidationError("'events' must be a non-empty list", 422)
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise EventValidationError(f"at most {MAX_EVENTS_PER_REQUEST} events per request", 413)
    if not all(isinstance(item, dict) for item in events):
        raise EventValidationError("each event must be a JSON object", 422)
    return events


def _event_type(item, allowed, default=None):
    event_type = item.get('type', default)
    if not isinstance(event_type, str) or event_type not in allowed:
        raise EventValidationError(f"unknown event type; allowed: {', '.join(sorted(allowed))}", 422)
    return event_type


def validate_beacon(body, now):
    """ {"vid": browser id, "events": [{"type", "url", "name", "ts", "value"}]} -> event values. """
    browser_id = body.get('vid')
    if not isinstance(browser_id, str) or not BROWSER_ID_PATTERN.match(browser_id):
        raise EventValidationError("'vid' must be 32 lowercase hex characters", 422)
    vals_list = []
    for item in _event_list(body):
        vals_list.append({
            'event_type': _event_type(item, BEACON_EVENT_TYPES),
            'source': 'tracker',
            'url': _url(item),
            'name': _text(item, 'name', MAX_NAME_LENGTH),
            'value': _number(item, 'value'),
            'occurred_at': _occurred_at(item, now),
            'anonymous_id': browser_id,
        })
    return vals_list


def validate_api_events(body, now):
    """ One event, or {"events": [...]}, each naming its contact by 'email' or 'partner_id'. """
    items = _event_list(body) if 'events' in body else [body]
    vals_list = []
    for item in items:
        email = _text(item, 'email', MAX_EMAIL_LENGTH + 1)
        # A cut e-mail is another address: a longer one is refused, not cut.
        if email and (len(email) > MAX_EMAIL_LENGTH or not email_normalize(email)):
            raise EventValidationError("'email' is not an e-mail address", 422)
        partner_id = item.get('partner_id')
        if partner_id is not None and (isinstance(partner_id, bool) or not isinstance(partner_id, int) or not 0 < partner_id < 2**31):
            raise EventValidationError("'partner_id' must be a positive integer", 422)
        if not email and partner_id is None:
            raise EventValidationError("each event needs an 'email' or a 'partner_id'", 422)
        vals_list.append({
            'event_type': _event_type(item, API_EVENT_TYPES, default='custom'),
            'source': 'api',
            'name': _text(item, 'name', MAX_NAME_LENGTH, required=True),
            'url': _url(item),
            'value': _number(item, 'value'),
            'occurred_at': _occurred_at(item, now),
            'payload': _payload(item),
            'email': email,
            'partner_id': partner_id,
            'contact_name': _text(item, 'contact_name', MAX_NAME_LENGTH),
        })
    return vals_list
