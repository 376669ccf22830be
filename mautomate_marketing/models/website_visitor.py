import uuid

from odoo import models, tools
from odoo.http import request

from .event_validation import BROWSER_ID_PATTERN

BROWSER_COOKIE = 'mautomate_vid'
BROWSER_COOKIE_MAX_AGE = 2 * 365 * 24 * 3600


def browser_id_from_request():
    """ The request's first-party browser id, or None when absent or malformed. """
    value = request.httprequest.cookies.get(BROWSER_COOKIE, '') if request else ''
    return value if BROWSER_ID_PATTERN.match(value) else None


def tracking_refused():
    """ Do-Not-Track, Global Privacy Control, or optional cookies refused in the cookie bar. """
    headers = request.httprequest.headers
    return (headers.get('DNT') == '1' or headers.get('Sec-GPC') == '1'
            or (request.website.cookies_bar and not request.env['ir.http']._is_allowed_cookie('optional')))


class WebsiteVisitor(models.Model):
    _inherit = 'website.visitor'

    # ------------------------------------------------------------
    # Page views
    # ------------------------------------------------------------

    def _is_trackable_page_response(self, response):
        return bool(
            getattr(request, 'is_frontend', False)
            and request.httprequest.method == 'GET'
            and getattr(response, 'status_code', 0) == 200
            and (getattr(response, 'mimetype', '') or '').startswith('text/html')
            and request.httprequest.headers.get('X-Disable-Tracking') != '1'
            and not request.env['ir.http'].is_a_bot()
            and not tracking_refused()
        )

    def _track_page_view(self, response):
        """ Log the page view of the current request, giving the browser its durable cookie.

        The event links to Odoo's visitor of this request where website created one (tracked
        pages, forms, logins), found by its access token in the same INSERT.
        """
        browser_id = browser_id_from_request()
        if not browser_id:
            browser_id = uuid.uuid4().hex
            response.set_cookie(BROWSER_COOKIE, browser_id, max_age=BROWSER_COOKIE_MAX_AGE,
                                httponly=True, samesite='Lax', cookie_type='optional')
        main_object = (getattr(response, 'qcontext', None) or {}).get('main_object')
        main_object = main_object.sudo() if isinstance(main_object, models.BaseModel) and len(main_object) == 1 else None
        related = main_object if main_object and main_object._name not in ('ir.ui.view', 'website.page') else None
        user = request.env.user
        self.env['mautomate.event'].sudo()._ingest([{
            'event_type': 'page_view',
            'source': 'website',
            'name': (main_object.display_name if main_object else None) or request.httprequest.path,
            'url': request.httprequest.url,
            'visitor_token': self._get_access_token(),
            'anonymous_id': browser_id,
            'partner_id': None if user._is_public() else user.partner_id.id,
            'res_model': related._name if related else None,
            'res_id': related.id if related else None,
            **self._utm_values_from_request(),
        }])

    def _track_form_submit(self, model_name, record_id, values):
        """ Log a website form submission; a form with an e-mail identifies the visitor. """
        if tracking_refused():
            return
        visitor = self._get_visitor_from_request(force_create=True)
        record = self.env[model_name].sudo().browse(record_id)
        lead = record if model_name == 'crm.lead' else self.env['crm.lead']
        partner = self._form_submit_partner(lead, values)
        self.env['mautomate.event'].sudo()._ingest([{
            'event_type': 'form_submit',
            'source': 'website',
            'name': record.display_name or self.env['ir.model']._get(model_name).name,
            'url': request.httprequest.headers.get('Referer'),
            'visitor_id': visitor.id,
            'anonymous_id': browser_id_from_request(),
            'partner_id': partner.id or None,
            'lead_id': lead.id or None,
            'res_model': model_name,
            'res_id': record_id,
            **self._utm_values_from_request(),
        }])
        if partner:
            visitor._attach_history_to_partner(partner)

    def _form_submit_partner(self, lead, values):
        """ Who submitted the form: the logged-in user, the lead's contact, else the contact with the
        form's e-mail, created if new. The lead's own customer is left to website_crm's rules. """
        if not request.env.user._is_public():
            return request.env.user.partner_id
        if lead.partner_id:
            return lead.partner_id
        email = next((values[key] for key in ('email_from', 'email', 'partner_email') if isinstance(values.get(key), str)), None)
        email_normalized = tools.email_normalize(email or '')
        if not email_normalized:
            return self.env['res.partner']
        name = values.get('contact_name') or values.get('name') or values.get('partner_name')
        return self.env['res.partner']._mautomate_find_or_create_by_email({email: name if isinstance(name, str) else None})[email_normalized]

    def _utm_values_from_request(self):
        """ UTM campaign/source/medium ids from the cookies Odoo's utm module sets. """
        values = {}
        for _parameter, field_name, cookie_name in self.env['utm.mixin'].tracking_fields():
            name = request.httprequest.cookies.get(cookie_name)
            if name and field_name in ('campaign_id', 'source_id', 'medium_id'):
                comodel = self.env['utm.mixin']._fields[field_name].comodel_name
                values[field_name] = self.env[comodel].sudo().search([('name', '=', name[:256])], limit=1).id or None
        return values

    # ------------------------------------------------------------
    # Identity
    # ------------------------------------------------------------

    def _attach_history_to_partner(self, partner):
        """ Give the contact all events of these visitors and of the current browser. """
        return self.env['mautomate.event'].sudo()._attach_anonymous_history(
            partner, visitors=self, anonymous_ids=[browser_id_from_request()])

    def write(self, vals):
        result = super().write(vals)
        if 'access_token' in vals:
            # Logging in turns an anonymous visitor into the user's partner.
            for visitor in self.filtered('partner_id'):
                visitor._attach_history_to_partner(visitor.partner_id)
        return result

    def _merge_visitor(self, target):
        self._attach_history_to_partner(target.partner_id)
        self.env.cr.execute("UPDATE mautomate_event SET visitor_id = %s WHERE visitor_id = ANY(%s)", (target.id, self.ids))
        self.env['mautomate.event'].invalidate_model(['visitor_id'])
        return super()._merge_visitor(target)
