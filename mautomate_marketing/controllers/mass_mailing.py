import uuid

from odoo import http
from odoo.http import request

from odoo.addons.mass_mailing.controllers.main import MassMailController

from ..models.website_visitor import BROWSER_COOKIE, BROWSER_COOKIE_MAX_AGE, browser_id_from_request


class MautomateMassMailController(MassMailController):

    @http.route()
    def full_url_redirect(self, code, mailing_trace_id, **post):
        """ A click in a tracked e-mail identifies the browser as the mail's recipient. """
        browser_id = browser_id_from_request()
        if not browser_id:
            browser_id = uuid.uuid4().hex
            request.future_response.set_cookie(BROWSER_COOKIE, browser_id, max_age=BROWSER_COOKIE_MAX_AGE,
                                               httponly=True, samesite='Lax', cookie_type='optional')
        request.update_context(mautomate_browser_id=browser_id)
        response = super().full_url_redirect(code, mailing_trace_id, **post)
        trace = request.env['mailing.trace'].sudo().browse(mailing_trace_id).exists()
        partner = trace._get_mautomate_partner() if trace else None
        if partner:
            request.env['mautomate.event'].sudo()._attach_anonymous_history(partner, anonymous_ids=[browser_id])
        return response
