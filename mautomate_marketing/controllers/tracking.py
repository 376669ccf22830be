from odoo import fields, http
from odoo.http import request

from ..models.event_validation import MAX_BODY_BYTES, EventValidationError, parse_json_body, validate_beacon


def read_body():
    """ At most MAX_BODY_BYTES + 1 bytes of the request body, so that a huge body is refused unread. """
    length = request.httprequest.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise EventValidationError(f"body larger than {MAX_BODY_BYTES} bytes", 413)
    return request.httprequest.stream.read(MAX_BODY_BYTES + 1)


def error_response(error):
    return request.make_json_response({'error': error.reason}, status=error.status)


class MautomateTracking(http.Controller):

    @http.route('/mautomate/track', type='http', auth='public', methods=['POST'], csrf=False, cors='*', save_session=False)
    def track(self):
        """ Beacons of tracker.js from sites that are not on Odoo: {"vid": ..., "events": [...]}. """
        try:
            vals_list = validate_beacon(parse_json_body(read_body()), fields.Datetime.now())
        except EventValidationError as error:
            return error_response(error)
        events = request.env['mautomate.event'].sudo()._ingest(vals_list)
        return request.make_json_response({'stored': len(events)}, status=202)
