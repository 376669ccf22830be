import re

from odoo import http
from odoo.http import request

from ..tools.event_validation import EventValidationError, parse_json_body
from .tracking import error_response, read_body, too_many_requests

WEB_URL = re.compile(r'^https?://[^\s/]+', re.IGNORECASE)


class MautomateCta(http.Controller):
    """ Smart calls to action of the website block: what this visitor is shown, and its clicks. CTAs are
    read as superuser here: visitors never read the CTA models themselves. """

    def _visitor(self):
        """ (Browser ID, logged-in user's contact id, whether tracked) of the request: a visitor who refused
        tracking (or the company's own people) is not personalised, and internal users have no Browser ID. """
        Visitor = request.env['website.visitor']
        if not Visitor._mautomate_should_track():
            return None, None, False
        partner_id = None if request.env.user._is_public() else request.env.user.partner_id.id
        browser_id = None if Visitor._mautomate_request_is_internal() else Visitor._mautomate_browser_id()
        return browser_id, partner_id, True

    @staticmethod
    def _page_url(url):
        return url if isinstance(url, str) and WEB_URL.match(url) else request.httprequest.headers.get('Referer')

    @http.route('/mautomate/cta/<int:cta_id>', type='json', auth='public', website=True)
    def cta_offer(self, cta_id, page_url=None):
        """ The line of CTA `cta_id` for this visitor: {label, url, style, token} ({} for no CTA). A view
        event is logged when the visitor may be tracked; its token lets the click be logged. """
        cta = request.env['mautomate.cta'].sudo().browse(cta_id).exists()
        # A company's call to action shows on its company's websites only.
        if not cta.active or (cta.company_id and cta.company_id != request.website.company_id):
            return {}
        browser_id, partner_id, tracked = self._visitor()
        shown, line, test = cta._mautomate_serve(browser_id, partner_id)
        if not line:
            return {}
        token = None
        # Over its address's limit, the CTA is still shown: its view is not logged, nor can its click be.
        if tracked and browser_id and not request.env['mautomate.rate.limit'].sudo()._hit(
                'cta_view', request.httprequest.remote_addr):
            request.env['mautomate.event'].sudo()._ingest([{
                **shown._mautomate_event_vals('cta_view', line, test, browser_id, partner_id, self._page_url(page_url)),
                'visitor_token': request.env['website.visitor']._get_access_token(),
            }])
            token = shown._mautomate_token(line, test, browser_id)
        return {'label': line.label, 'url': line.url, 'style': line.style, 'token': token}

    @http.route('/mautomate/cta/click', type='http', auth='public', methods=['POST'], website=True, csrf=False,
                save_session=False, mautomate_json_body=True)
    def cta_click(self, **_form):
        """ A click on a CTA, sent as a beacon {token, url} as the visitor leaves the page: logged as an event
        of the line the token was signed for, for the request's browser; anything else changes nothing. """
        try:
            body = parse_json_body(read_body())
        except EventValidationError as error:
            return error_response(error)
        browser_id, partner_id, tracked = self._visitor()
        found = request.env['mautomate.cta'].sudo()._mautomate_read_token(body.get('token'), browser_id) if browser_id else None
        if not tracked or not found or not found[0].exists() or not found[1]:
            return request.make_json_response({'stored': 0}, status=202)
        if request.env['mautomate.rate.limit'].sudo()._hit('cta_click', request.httprequest.remote_addr):
            return too_many_requests()
        cta, line, test = found
        request.env['mautomate.event'].sudo()._ingest([{
            **cta._mautomate_event_vals('cta_click', line, test.exists(), browser_id, partner_id, self._page_url(body.get('url'))),
            'visitor_token': request.env['website.visitor']._get_access_token(),
        }])
        return request.make_json_response({'stored': 1}, status=202)
