import logging

from werkzeug.exceptions import abort

from odoo import models
from odoo.http import request

from ..tools.event_validation import BODY_TOO_LARGE, MAX_BODY_BYTES

_logger = logging.getLogger(__name__)


class IrHttp(models.AbstractModel):
    _inherit = 'ir.http'

    @classmethod
    def _pre_dispatch(cls, rule, args):
        if rule.endpoint.routing.get('mautomate_json_body'):
            length = request.httprequest.content_length or 0
            if length > MAX_BODY_BYTES:
                # Refused before Odoo reads the body as a form, which would answer a large one with an HTML page.
                abort(request.make_json_response({'error': BODY_TOO_LARGE}, status=413))
            if length:
                # JSON routes read their body whatever its Content-Type: keep it before Odoo parses it as a form.
                request.httprequest.get_data()
        return super()._pre_dispatch(rule, args)

    @classmethod
    def _register_website_track(cls, response):
        """ Log every website page a person opens, not only views flagged `track`. """
        result = super()._register_website_track(response)
        # Like website's own tracking, nothing is written when a read replica serves the request.
        if request.env.cr.readonly or not request.env['website.visitor']._mautomate_is_trackable_page_response(response):
            return result
        try:
            # Its INSERT runs in a savepoint of its own (see _ingest): a failure leaves the page's transaction intact.
            request.env['website.visitor']._mautomate_track_page_view(response)
        except Exception:
            # Tracking never costs the visitor the page they asked for.
            _logger.exception("Could not log the page view of %s", request.httprequest.path)
        return result
