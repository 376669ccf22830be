import json

from odoo import http
from odoo.http import request


class MautomatePopups(http.Controller):

    @http.route('/mautomate/popup', type='http', auth='public', website=True, methods=['GET'], sitemap=False,
                save_session=False)
    def popups(self, path='/'):
        """ The pop-ups a page of this browser may show (the page's script asks after it has loaded). The browser
        keeps when it showed each one; this leaves out the forms this browser or its contact already sent. """
        user = request.env.user
        Visitor = request.env['website.visitor']
        if not user._is_public():
            partner = user.partner_id
        else:
            visitor = Visitor._get_visitor_from_request()
            partner = visitor.sudo().partner_id if visitor else request.env['res.partner']
        popups = request.env['mautomate.popup'].sudo()._popups_for_page(
            request.website.id, str(path)[:2048], partner, Visitor._mautomate_browser_id())
        # Per browser: a shared cache must not keep it; the browser may, for a minute.
        return request.make_response(json.dumps({'popups': popups}), headers=[
            ('Content-Type', 'application/json'), ('Cache-Control', 'private, max-age=60')])
