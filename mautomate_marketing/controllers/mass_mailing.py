from odoo import http, tools
from odoo.http import request

from odoo.addons.website_mass_mailing.controllers.main import MassMailController


class MautomateMassMailController(MassMailController):

    @http.route()
    def full_url_redirect(self, code, mailing_trace_id, sig=None, **post):
        """ A click in a tracked e-mail proves the browser is the mail's recipient, when the link carries the
        signature its mail was sent with. Without it (a guessed trace id) it still redirects, but names no browser. """
        trace = request.env['mailing.trace'].sudo().browse(mailing_trace_id).exists()
        if not trace or not trace._mautomate_check_link_signature(sig):
            request.update_context(mautomate_browser_id=None)
            return super().full_url_redirect(code, mailing_trace_id, **post)
        browser_id = request.env['website.visitor']._mautomate_ensure_browser_id()
        request.update_context(mautomate_browser_id=browser_id)
        response = super().full_url_redirect(code, mailing_trace_id, **post)
        partner = trace._mautomate_partner()
        request.env['website.visitor']._mautomate_prove_browser(partner, 'mail', browser_id)
        return response

    @http.route()
    def subscribe(self, list_id, value, subscription_type, **post):
        """ The newsletter block: a subscription by e-mail identifies the visitor by the e-mail typed. """
        try:
            mailing_list = request.env['mailing.list'].sudo().browse(int(list_id)).exists()
        except (TypeError, ValueError):
            mailing_list = None
        if not mailing_list:
            # A block left on a page after its list was deleted: a message, not a failed insert (an error in the log).
            return {'toast_type': 'danger', 'toast_content': request.env._("This newsletter no longer exists.")}
        result = super().subscribe(list_id, value, subscription_type, **post)
        if subscription_type == 'email' and result.get('toast_type') == 'success':
            Visitor = request.env['website.visitor']
            identity = Visitor._mautomate_form_identity('mailing.contact', {'email': value})
            partner = Visitor._mautomate_form_partner('mailing.contact', identity)
            contact = request.env['mailing.contact'].sudo().search(
                [('email_normalized', '=', tools.email_normalize(value))], limit=1)
            Visitor._mautomate_track_form_submit('mailing.contact', contact.id, partner, named=True)
        return result
