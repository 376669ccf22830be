import hashlib
import hmac

from odoo import http, tools
from odoo.http import request

from ..models.event_validation import BROWSER_ID_PATTERN, HARD_BODY_LIMIT, EventValidationError, parse_json_body
from .tracking import error_response, read_body

MAX_EMAIL_LENGTH = 254


class MautomateIdentify(http.Controller):

    @http.route('/mautomate/identify', type='http', auth='public', methods=['POST'], csrf=False, cors='*',
                save_session=False, max_content_length=HARD_BODY_LIMIT, mautomate_json_body=True)
    def identify(self, **_form):
        """ tracker.js identify(): {"vid": ..., "email": ..., "signature": HMAC of the e-mail}. Only a
        signature made with the identify secret (known to the other site's server) is accepted. """
        if origin := request.httprequest.headers.get('Origin'):
            # tracker.js sends the browser's cookies, as its beacons do: the page may read the answer only when
            # it is named (not '*'). The answer tells nothing a valid signature did not already give.
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
        browser_id, email, signature = body.get('vid'), body.get('email'), body.get('signature')
        if not isinstance(browser_id, str) or not BROWSER_ID_PATTERN.match(browser_id):
            raise EventValidationError("vid must be 32 lower-case hexadecimal characters", 422)
        email_normalized = tools.email_normalize(email) if isinstance(email, str) and len(email) <= MAX_EMAIL_LENGTH else False
        if not email_normalized:
            raise EventValidationError("email must be an e-mail address", 422)
        if not isinstance(signature, str) or not signature:
            raise EventValidationError("signature missing: sign the e-mail on your server", 403)
        secret = request.env['res.config.settings'].sudo()._mautomate_get_identify_secret()
        expected = hmac.new(secret.encode(), email_normalized.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise EventValidationError("wrong signature", 403)
        return browser_id, email_normalized
