from werkzeug.exceptions import NotFound

from odoo import http
from odoo.http import request


class MautomateConsentConfirm(http.Controller):

    @http.route('/mautomate/consent/confirm/<string:token>', type='http', auth='public', website=True,
                methods=['GET', 'POST'], sitemap=False)
    def consent_confirm(self, token, **_post):
        """ The double opt-in link. Opening it (GET) shows a button; only its POST (CSRF-checked by Odoo) confirms
        the consent and releases the marketing mail held for the address: mail scanners open links, not forms. """
        consent = request.env['mautomate.consent'].sudo()._from_confirm_token(token)
        if not consent:
            raise NotFound()
        if request.httprequest.method == 'POST':
            consent._confirm(request.httprequest.remote_addr)
            # The link reached its address's inbox: the browser that confirms is that contact's.
            request.env['website.visitor']._mautomate_prove_browser(consent.partner_id, 'optin')
        elif consent.state != 'confirmed':
            return request.render('mautomate_marketing.consent_confirm', {'consent': consent, 'token': token})
        return request.render('mautomate_marketing.consent_confirmed', {'consent': consent})
