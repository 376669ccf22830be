import hashlib
import hmac
import re
import time

from odoo import http, tools
from odoo.http import request

from ..tools.event_validation import BROWSER_ID_PATTERN, HARD_BODY_LIMIT, EventValidationError, parse_json_body
from .tracking import error_response, read_body, too_many_requests

MAX_EMAIL_LENGTH = 254
# A signature is accepted this many seconds after its timestamp, and this many before it (clocks differ a little).
IDENTIFY_MAX_AGE = 600
IDENTIFY_MAX_SKEW = 60
IDENTIFY_ORIGINS_PARAM = 'mautomate_marketing.identify_origins'


def identify_origins(value):
    """ The origins of a Settings text (separated by commas, spaces or lines), as browsers send them: lower-case,
    without a trailing slash. """
    return {origin.lower().rstrip('/') for origin in re.split(r'[\s,]+', value or '') if origin}


def identify_signature(secret, email_normalized, browser_id, timestamp):
    """ Hex HMAC-SHA256 of 'email|browser id|unix seconds' with the identify secret, as the other site's server makes it. """
    return hmac.new(secret.encode(), f'{email_normalized}|{browser_id}|{timestamp}'.encode(), hashlib.sha256).hexdigest()


class MautomateIdentify(http.Controller):

    @http.route('/mautomate/identify', type='http', auth='public', methods=['POST'], csrf=False,
                save_session=False, max_content_length=HARD_BODY_LIMIT, mautomate_json_body=True)
    def identify(self, **_form):
        """ tracker.js identify(): {"vid", "email", "timestamp", "signature": HMAC of email|vid|timestamp}. Only a
        recent signature made with the identify secret (known to the other site's server) is accepted, and only
        from a page of an origin listed in Settings (a request without Origin comes from no page). """
        if request.env['mautomate.rate.limit'].sudo()._hit('identify', request.httprequest.remote_addr):
            return too_many_requests()
        if origin := request.httprequest.headers.get('Origin'):
            allowed = identify_origins(request.env['ir.config_parameter'].sudo().get_param(IDENTIFY_ORIGINS_PARAM))
            if origin.lower() not in allowed:
                return error_response(EventValidationError("this origin may not identify visitors: list it in Settings", 403))
            # tracker.js sends the browser's cookies, as its beacons do: a listed page may read the answer.
            headers = request.future_response.headers
            headers.set('Access-Control-Allow-Origin', origin)
            headers.set('Access-Control-Allow-Credentials', 'true')
            headers.add('Vary', 'Origin')
        try:
            body = parse_json_body(read_body())
            browser_id, email_normalized = self._validate_identify(body)
        except EventValidationError as error:
            return error_response(error)
        partner = request.env['res.partner'].sudo()._mautomate_find_or_create_by_email({email_normalized: None})[email_normalized]
        attached = request.env['website.visitor']._mautomate_prove_browser(partner, 'identify', browser_id)
        return request.make_json_response({'identified': True, 'attached': attached})

    def _validate_identify(self, body):
        browser_id, email, signature, timestamp = body.get('vid'), body.get('email'), body.get('signature'), body.get('timestamp')
        if not isinstance(browser_id, str) or not BROWSER_ID_PATTERN.match(browser_id):
            raise EventValidationError("vid must be 32 lower-case hexadecimal characters", 422)
        email_normalized = tools.email_normalize(email) if isinstance(email, str) and len(email) <= MAX_EMAIL_LENGTH else False
        if not email_normalized:
            raise EventValidationError("email must be an e-mail address", 422)
        if not isinstance(signature, str) or not signature:
            raise EventValidationError("signature missing: sign the e-mail, browser id and timestamp on your server", 403)
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise EventValidationError("timestamp must be the signature's time in unix seconds", 422)
        age = time.time() - timestamp
        if age > IDENTIFY_MAX_AGE or age < -IDENTIFY_MAX_SKEW:
            raise EventValidationError(f"signature expired: sign at most {IDENTIFY_MAX_AGE} seconds before", 403)
        secret = request.env['res.config.settings'].sudo()._mautomate_get_identify_secret()
        expected = identify_signature(secret, email_normalized, browser_id, timestamp)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise EventValidationError("wrong signature", 403)
        return browser_id, email_normalized
