from werkzeug.exceptions import RequestEntityTooLarge

from odoo import fields, http
from odoo.http import request

from ..tools.event_validation import BODY_TOO_LARGE, HARD_BODY_LIMIT, EventValidationError, parse_json_body, validate_beacon


def read_body():
    """ The request body (one of a declared length too large was refused already, see ir.http._pre_dispatch). """
    try:
        return request.httprequest.get_data()
    except RequestEntityTooLarge:
        raise EventValidationError(BODY_TOO_LARGE, 413) from None


def error_response(error):
    return request.make_json_response({'error': error.reason}, status=error.status)


def too_many_requests():
    """ The answer of a request over its address's limit: it stored nothing. """
    response = error_response(EventValidationError("too many requests from this address: wait a minute", 429))
    response.headers['Retry-After'] = '60'
    return response


class MautomateTracking(http.Controller):

    @http.route('/mautomate/track', type='http', auth='public', methods=['POST'], csrf=False, cors='*', save_session=False,
                max_content_length=HARD_BODY_LIMIT, mautomate_json_body=True)
    def track(self, **_form):
        """ Beacons of tracker.js from sites that are not on Odoo: {"vid": ..., "events": [...]}.

        sendBeacon posts text/plain; any Content-Type is read as JSON, form fields parsed from it are ignored.
        """
        try:
            vals_list = validate_beacon(parse_json_body(read_body()), fields.Datetime.now())
        except EventValidationError as error:
            vals_list, refused = [], error
        else:
            refused = None
        # The per-IP limit counts events (a refused request as one), shared by all workers: one statement.
        if request.env['mautomate.rate.limit'].sudo()._hit('track', request.httprequest.remote_addr, len(vals_list) or 1):
            return too_many_requests()
        if refused:
            return error_response(refused)
        Visitor = request.env['website.visitor']
        if Visitor._mautomate_ip_excluded(request.httprequest.remote_addr):
            return request.make_json_response({'stored': 0}, status=202)
        # Not a website route: the website is the one the request's host names (cached by host).
        company_id = request.env['website'].get_current_website()._get_cached('company_id')
        events = request.env['mautomate.event'].sudo()._ingest([{**vals, 'company_id': company_id} for vals in vals_list])
        return request.make_json_response({'stored': len(events)}, status=202)
