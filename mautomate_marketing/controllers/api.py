from odoo import fields, http
from odoo.http import request

from ..models.event_validation import HARD_BODY_LIMIT, EventValidationError, parse_json_body, validate_api_events
from .tracking import error_response, read_body


class MautomateApi(http.Controller):

    @http.route('/mautomate/api/v1/events', type='http', auth='public', methods=['POST'], csrf=False, save_session=False,
                max_content_length=HARD_BODY_LIMIT)
    def post_events(self):
        """ Custom events of known contacts, authenticated with 'Authorization: Bearer <API token>'. """
        scheme, _sep, token = request.httprequest.headers.get('Authorization', '').partition(' ')
        key, status = request.env['mautomate.api.key'].sudo()._authenticate(token.strip() if scheme == 'Bearer' else '')
        if status == 'invalid':
            response = error_response(EventValidationError("missing or invalid API token", 401))
            response.headers['WWW-Authenticate'] = 'Bearer realm="mautomate"'
            return response
        if status == 'revoked':
            return error_response(EventValidationError("this API token was revoked", 403))
        try:
            vals_list = validate_api_events(parse_json_body(read_body()), fields.Datetime.now())
            events = request.env['mautomate.event'].sudo()._ingest_api_events(vals_list)
        except EventValidationError as error:
            return error_response(error)
        key._register_use(len(events))
        return request.make_json_response({'stored': len(events), 'ids': events.ids}, status=201)
