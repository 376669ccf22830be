import json

from odoo import fields, http
from odoo.http import request
from odoo.tools import file_open

from ..tools.event_validation import HARD_BODY_LIMIT, EventValidationError, parse_json_body, validate_api_events
from .tracking import error_response, read_body

OPENAPI_PATH = 'mautomate_marketing/controllers/openapi.json'


class MautomateApi(http.Controller):

    @http.route('/mautomate/api/v1/events', type='http', auth='public', methods=['POST'], csrf=False, save_session=False,
                max_content_length=HARD_BODY_LIMIT, mautomate_json_body=True)
    def post_events(self, **_form):
        """ Custom events of known contacts, authenticated with 'Authorization: Bearer <API token>'.

        The body is JSON whatever its Content-Type (curl -d sends a form type): what Odoo parsed
        from it as form fields arrives in ``_form`` and is ignored.
        """
        scheme, _sep, token = request.httprequest.headers.get('Authorization', '').partition(' ')
        # The scheme's name is case-insensitive (RFC 7235).
        key, status = request.env['mautomate.api.key'].sudo()._authenticate(token.strip() if scheme.lower() == 'bearer' else '')
        if status == 'invalid':
            response = error_response(EventValidationError("missing or invalid API token", 401))
            response.headers['WWW-Authenticate'] = 'Bearer realm="mautomate"'
            return response
        if status == 'revoked':
            return error_response(EventValidationError("this API token was revoked", 403))
        try:
            events = key._ingest_events(validate_api_events(parse_json_body(read_body()), fields.Datetime.now()))
        except EventValidationError as error:
            return error_response(error)
        return request.make_json_response({'stored': len(events), 'ids': events.ids}, status=201)

    @http.route('/mautomate/api/v1/openapi.json', type='http', auth='public', methods=['GET'], cors='*',
                save_session=False, readonly=True)
    def openapi(self):
        """ The OpenAPI 3 description of the event API and the tracker beacon, for this server. """
        with file_open(OPENAPI_PATH) as file:
            description = json.load(file)
        description['servers'] = [{'url': request.env['mautomate.api.key'].get_base_url()}]
        return request.make_json_response(description)
