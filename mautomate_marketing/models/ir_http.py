import logging

from odoo import models
from odoo.http import request

_logger = logging.getLogger(__name__)


class IrHttp(models.AbstractModel):
    _inherit = 'ir.http'

    @classmethod
    def _register_website_track(cls, response):
        """ Log every website page a person opens, not only views flagged `track`. """
        result = super()._register_website_track(response)
        # Like website's own tracking, nothing is written when a read replica serves the request.
        if request.env.cr.readonly or not request.env['website.visitor']._is_trackable_page_response(response):
            return result
        try:
            with request.env.cr.savepoint(flush=False):
                request.env['website.visitor']._track_page_view(response)
        except Exception:
            # Tracking never costs the visitor the page they asked for.
            _logger.exception("Could not log the page view of %s", request.httprequest.path)
        return result
