from werkzeug.exceptions import NotFound

from odoo import http
from odoo.http import request


class MautomateConsentConfirm(http.Controller):

    @http.route('/mautomate/consent/confirm/<string:token>', type='http', auth='public', website=True,
                methods=['GET'], sitemap=False)
    def consent_confirm(self, token):
        """ The double opt-in link: confirms the consent and releases the marketing mail held for the address. """
        consent = request.env['mautomate.consent'].sudo()._from_confirm_token(token)
        if not consent:
            raise NotFound()
        consent._confirm(request.httprequest.remote_addr)
        # The link reached its address's inbox: the browser that confirms is that contact's.
        request.env['website.visitor']._mautomate_prove_browser(consent.partner_id, 'optin')
        return request.render('mautomate_marketing.consent_confirmed', {'consent': consent})
