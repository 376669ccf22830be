import json

from odoo import http
from odoo.http import request

from ..tools.event_validation import EventValidationError, parse_json_body
from .cta import MautomateCta
from .tracking import error_response, read_body, too_many_requests


class MautomatePopups(http.Controller):

    # Only reads (the views are logged by /mautomate/popup/shown): a database replica can answer it.
    @http.route('/mautomate/popup', type='http', auth='public', website=True, methods=['GET'], sitemap=False,
                save_session=False, readonly=True)
    def popups(self, path='/'):
        """ The pop-ups a page of this browser may show (the page's script asks after it has loaded). The browser
        keeps when it showed each one; this leaves out the forms this browser or its proven contact already sent. """
        user = request.env.user
        Visitor = request.env['website.visitor']
        # A browser that refused tracking gets no token: its views are not logged, nor counted by A/B tests.
        browser_id = Visitor._mautomate_browser_id() if Visitor._mautomate_should_track() else None
        if not user._is_public():
            partner = user.partner_id
        else:
            visitor = Visitor._get_visitor_from_request()
            partner = visitor.sudo().partner_id if visitor else request.env['res.partner']
            # Only a proven contact's submits count: an e-mail typed in a form is a claim.
            partner = partner or request.env['mautomate.proven.browser'].sudo()._partner_of(browser_id)
        popups = request.env['mautomate.popup'].sudo()._popups_for_page(
            request.website.id, str(path)[:2048], partner, browser_id)
        # Per browser: a shared cache must not keep it; the browser may, for a minute.
        return request.make_response(json.dumps({'popups': popups}), headers=[
            ('Content-Type', 'application/json'), ('Cache-Control', 'private, max-age=60')])

    @http.route('/mautomate/popup/shown', type='http', auth='public', methods=['POST'], website=True, csrf=False,
                save_session=False, mautomate_json_body=True)
    def popup_shown(self, **_form):
        """ A pop-up shown, sent as a beacon {token, url}: logged as a view of the pop-up (the A/B variant) the token
        was signed for, for the request's browser; anything else changes nothing. """
        try:
            body = parse_json_body(read_body())
        except EventValidationError as error:
            return error_response(error)
        Visitor = request.env['website.visitor']
        tracked = Visitor._mautomate_should_track() and not Visitor._mautomate_request_is_internal()
        browser_id = Visitor._mautomate_browser_id()
        found = tracked and browser_id and request.env['mautomate.popup'].sudo()._mautomate_read_token(body.get('token'), browser_id)
        if not found:
            return request.make_json_response({'stored': 0}, status=202)
        if request.env['mautomate.rate.limit'].sudo()._hit('popup_view', request.httprequest.remote_addr):
            return too_many_requests()
        popup, test = found
        request.env['mautomate.event'].sudo()._ingest([{
            'event_type': 'popup_view',
            'source': 'website',
            'name': popup.name,
            'url': MautomateCta._page_url(body.get('url')),
            'anonymous_id': browser_id,
            'partner_id': None if request.env.user._is_public() else request.env.user.partner_id.id,
            'visitor_token': Visitor._get_access_token(),
            'res_model': popup._name,
            'res_id': popup.id,
            'payload': {'form': popup.form_id.slug, **({'ab_test': test.id} if test else {})},
        }])
        return request.make_json_response({'stored': 1}, status=202)
