import ipaddress
import logging
import uuid
from contextlib import contextmanager

from odoo import models, tools
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..tools.event_validation import BROWSER_ID_PATTERN

_logger = logging.getLogger(__name__)

BROWSER_COOKIE = 'mautomate_vid'
BROWSER_COOKIE_MAX_AGE = 2 * 365 * 24 * 3600
# Form fields that hold the visitor's own e-mail, in the order they are looked for.
FORM_EMAIL_FIELDS = ('email_from', 'email', 'partner_email')
# Addresses a form sends to or copies, never the visitor's.
FORM_NOT_VISITOR_EMAIL_FIELDS = ('email_to', 'email_cc', 'email_bcc', 'reply_to')
MAX_FORM_TEXT = 256


class WebsiteVisitor(models.Model):
    _inherit = 'website.visitor'

    # ------------------------------------------------------------
    # The browser of the current request
    # ------------------------------------------------------------

    def _mautomate_browser_id(self):
        """ The request's first-party Browser ID (cookie, or the one this request gave), or None when absent or malformed. """
        if not request:
            return None
        value = request.httprequest.cookies.get(BROWSER_COOKIE, '')
        return value if BROWSER_ID_PATTERN.match(value) else getattr(request, '_mautomate_given_browser_id', None)

    def _mautomate_ensure_browser_id(self, response=None):
        """ The request's Browser ID, giving the browser a new one (an optional cookie) if it has none. """
        browser_id = self._mautomate_browser_id()
        if not browser_id:
            browser_id = uuid.uuid4().hex
            (response or request.future_response).set_cookie(
                BROWSER_COOKIE, browser_id, max_age=BROWSER_COOKIE_MAX_AGE, httponly=True, samesite='Lax',
                cookie_type='optional')
            # Asked again later in the request (the page view after the page), it is the same browser.
            request._mautomate_given_browser_id = browser_id
        return browser_id

    def _mautomate_tracking_refused(self):
        """ Do-Not-Track, Global Privacy Control, or optional cookies refused in the cookie bar. """
        headers = request.httprequest.headers
        return (headers.get('DNT') == '1' or headers.get('Sec-GPC') == '1'
                or (request.website.cookies_bar and not request.env['ir.http']._is_allowed_cookie('optional')))

    def _mautomate_request_user_kind(self):
        """ 'public', 'portal' or 'internal': who makes the current request. A page view asks it
        several times; it is worked out once per request and user. """
        user = request.env.user
        known = getattr(request, '_mautomate_user_kind', None)
        if isinstance(known, tuple) and known[0] == user.id:
            return known[1]
        website = getattr(request, 'website', None)
        # Website's own test first (its public user, cached): has_group() costs a page view more than its INSERT's planning.
        if website and user.id == website._get_cached('user_id'):
            kind = 'public'
        else:
            kind = 'internal' if not user.share else 'public' if user._is_public() else 'portal'
        request._mautomate_user_kind = (user.id, kind)
        return kind

    def _mautomate_request_is_internal(self):
        return self._mautomate_request_user_kind() == 'internal'

    def _get_visitor_from_request(self, force_create=False, force_track_values=None):
        visitor = super()._get_visitor_from_request(force_create=force_create, force_track_values=force_track_values)
        if visitor and request:
            # Website's own tracking found or created it earlier in this request: the page view names it by id.
            request._mautomate_visitor = (request.env.uid, visitor.id)
        return visitor

    def _mautomate_request_visitor_id(self):
        """ Id of the request's website visitor when this request already looked it up, else None. """
        known = getattr(request, '_mautomate_visitor', None)
        return known[1] if isinstance(known, tuple) and known[0] == request.env.uid else None

    def _mautomate_tracking_excluded(self):
        """ Requests the company's own people make: logged-in internal users (unless Settings track
        them) and the excluded IP addresses. """
        if self._mautomate_request_is_internal() and not self.env['ir.config_parameter'].sudo().get_param(
                'mautomate_marketing.track_internal_users'):
            return True
        return self._mautomate_ip_excluded(request.httprequest.remote_addr)

    @tools.ormcache()
    def _mautomate_excluded_networks(self):
        """ The excluded IP addresses and networks of Settings (comma, space or line separated; a typo is
        skipped). Cached: every page view and beacon asks; saving Settings clears it. """
        excluded_ips = self.env['ir.config_parameter'].sudo().get_param('mautomate_marketing.excluded_ips') or ''
        networks = []
        for item in excluded_ips.replace(',', ' ').split():
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                continue
        return tuple(networks)

    def _mautomate_ip_excluded(self, address):
        """ Whether the address is one of the excluded IP addresses or networks. """
        networks = self._mautomate_excluded_networks()
        if not networks or not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    def _mautomate_should_track(self):
        return not self._mautomate_tracking_refused() and not self._mautomate_tracking_excluded()

    def _mautomate_utm_values(self):
        """ UTM campaign/source/medium ids of the request: its utm_* parameters (the landing page),
        else the cookies Odoo's utm module set earlier; matched by name as utm does (=ilike). """
        values = {}
        for parameter, field_name, cookie_name in self.env['utm.mixin'].tracking_fields():
            if field_name not in ('campaign_id', 'source_id', 'medium_id'):
                continue
            name = request.params.get(parameter) or request.httprequest.cookies.get(cookie_name)
            name = name.strip()[:MAX_FORM_TEXT] if isinstance(name, str) else None
            if name:
                comodel = self.env[self.env['utm.mixin']._fields[field_name].comodel_name]
                values[field_name] = comodel.sudo().with_context(active_test=False).search(
                    [('name', '=ilike', name)], limit=1).id or None
        return values

    # ------------------------------------------------------------
    # Page views
    # ------------------------------------------------------------

    def _mautomate_is_trackable_page_response(self, response):
        return bool(
            getattr(request, 'is_frontend', False)
            and request.httprequest.method == 'GET'
            and getattr(response, 'status_code', 0) == 200
            and (getattr(response, 'mimetype', '') or '').startswith('text/html')
            and request.httprequest.headers.get('X-Disable-Tracking') != '1'
            and not request.env['ir.http'].is_a_bot()
            and self._mautomate_should_track()
        )

    def _mautomate_track_page_view(self, response):
        """ Log the page view of the current request, giving the browser its durable cookie.

        The event links to Odoo's visitor of this request where website created one (tracked
        pages, forms, logins): by the id website's tracking just upserted, else by its access
        token in the INSERT. Internal users (when tracked) carry no Browser ID, so that their
        browser never names an anonymous visitor.
        """
        kind = self._mautomate_request_user_kind()
        internal = kind == 'internal'
        browser_id = None if internal else self._mautomate_ensure_browser_id(response)
        visitor_id = None if internal else self._mautomate_request_visitor_id()
        Event = self.env['mautomate.event'].sudo()
        main_object = (getattr(response, 'qcontext', None) or {}).get('main_object')
        main_object = main_object.with_env(Event.env) if isinstance(main_object, models.BaseModel) and len(main_object) == 1 else None
        if main_object and main_object._name in ('ir.ui.view', 'website.page'):
            # A page: its view's name, read as stored (a page inherits it, which costs a related field's compute).
            name, related = (main_object.view_id if main_object._name == 'website.page' else main_object).name, None
        else:
            name, related = main_object.display_name if main_object else None, main_object
        Event._ingest([{
            'event_type': 'page_view',
            'source': 'website',
            'name': name or request.httprequest.path,
            'url': request.httprequest.url,
            'visitor_id': visitor_id,
            'visitor_token': None if internal or visitor_id else self._get_access_token(),
            'anonymous_id': browser_id,
            'partner_id': None if kind == 'public' else request.env.user.partner_id.id,
            'res_model': related._name if related else None,
            'res_id': related.id if related else None,
            **self._mautomate_utm_values(),
        }], savepoint='mautomate_page_view', public=kind == 'public')

    # ------------------------------------------------------------
    # Forms
    # ------------------------------------------------------------

    def _mautomate_form_identity(self, model_name, values):
        """ (e-mail, name, values for a new contact) the visitor typed in a website form, read before
        the form's model changes them (a mail.mail form replaces email_from with the company's). """
        params = request.params

        def text(value):
            return value.strip()[:MAX_FORM_TEXT] if isinstance(value, str) and value.strip() else None

        email = next((text(values.get(key)) for key in FORM_EMAIL_FIELDS if text(values.get(key))), None)
        if not email:
            email = next((text(value) for key, value in params.items() if 'email' in key
                          and key not in FORM_NOT_VISITOR_EMAIL_FIELDS and tools.email_normalize(text(value) or '')), None)
        name = text(values.get('contact_name'))
        if not name and model_name != 'crm.lead':
            name = text(values.get('name')) or text(params.get('name'))
        new_contact = {
            'phone': text(values.get('phone')) or text(params.get('phone')),
            'company_name': text(values.get('partner_name')) or text(params.get('company')),
        }
        return email, name, {key: value for key, value in new_contact.items() if value}

    def _mautomate_form_contact(self, identity):
        """ The contact of the e-mail an anonymous visitor typed, created when new; none for the
        companies' and internal users' own contacts (anyone can type their e-mail). """
        email, name, new_contact = identity
        email_normalized = tools.email_normalize(email or '')
        if not email_normalized:
            return self.env['res.partner']
        partner = self.env['res.partner']._mautomate_find_or_create_by_email(
            {email_normalized: name}, {email_normalized: new_contact})[email_normalized]
        return partner - partner._mautomate_history_protected()

    @contextmanager
    def _mautomate_guard(self, message, *args):
        """ Runs tracking in a savepoint: its error is logged, never raised, but for a concurrent request's, which
        Odoo retries (the whole request, so that nothing is lost). """
        try:
            with self.env.cr.savepoint():
                yield
        except Exception as error:
            if isinstance(error, PG_CONCURRENCY_EXCEPTIONS_TO_RETRY):
                raise
            _logger.exception(message, *args)

    def _mautomate_form_partner(self, model_name, identity):
        """ Who submits a website form: a logged-in user is its own contact, an anonymous visitor
        the contact of the e-mail typed. Errors other than a concurrent request (which Odoo
        retries) never cost the visitor its form. """
        user = request.env.user
        if not user._is_public():
            return user.partner_id
        if model_name != 'crm.lead' and not self._mautomate_should_track():
            return self.env['res.partner']
        with self._mautomate_guard("Could not find the contact of a %s form", model_name):
            return self._mautomate_form_contact(identity)
        return self.env['res.partner']

    def _mautomate_track_form_submit(self, model_name, record_id, partner, named=False):
        """ Log a website form submission of `partner` (may be empty) and give it the visitor's
        history; tracking never fails the form. `named`: the form holds an e-mail, whose contact
        (if any) `partner` is. """
        if not self._mautomate_should_track():
            return
        with self._mautomate_guard("Could not log the submission of a %s form", model_name):
            self._mautomate_log_form_submit(model_name, record_id, partner, named)

    def _mautomate_request_visitor(self):
        """ The request's visitor, created if new. The two submits of a double click would upsert its row at once:
        the second waits for the first, then restarts (see mautomate.lock), instead of failing in website's own
        statement, which logs an error. """
        self.env['mautomate.lock']._acquire([f'website.visitor:{self._get_access_token()}'])
        return self._get_visitor_from_request(force_create=True)

    def _mautomate_log_form_submit(self, model_name, record_id, partner, named=False):
        visitor = self._mautomate_request_visitor()
        record = self.env[model_name].sudo().browse(record_id or []).exists()
        lead = record if model_name == 'crm.lead' else self.env['crm.lead']
        # An e-mail that gives no contact (not an address, the company's, an employee's) does not make the submit
        # the contact this browser was known as: it names no browser, whose contact the event would get.
        anonymous = named and not partner
        self.env['mautomate.event'].sudo()._ingest([{
            'event_type': 'form_submit',
            'source': 'website',
            'name': record.display_name or self.env['ir.model']._get(model_name).name,
            'url': request.httprequest.headers.get('Referer'),
            'visitor_id': None if anonymous else visitor.id,
            'anonymous_id': None if anonymous or self._mautomate_request_is_internal() else self._mautomate_ensure_browser_id(),
            'partner_id': partner.id or None,
            'lead_id': lead.id or None,
            'res_model': model_name,
            'res_id': record.id or None,
            **self._mautomate_utm_values(),
        }])
        if partner:
            visitor._mautomate_attach_history_to_partner(partner)

    # ------------------------------------------------------------
    # Identity
    # ------------------------------------------------------------

    def _mautomate_attach_history_to_partner(self, partner):
        """ Give the contact all events of these visitors and of the current browser. """
        return self.env['mautomate.event'].sudo()._attach_anonymous_history(
            partner, visitors=self, anonymous_ids=[self._mautomate_browser_id()])

    def _mautomate_prove_browser(self, partner, proof, browser_id=None):
        """ The request's browser (or `browser_id`) is proven to be `partner` (a login, a signed link or identify):
        its anonymous history joins the contact, and its later events and what it is shown are the contact's.
        Returns the number of events attached. """
        browser_id = browser_id or (self._mautomate_should_track() and self._mautomate_browser_id())
        if not partner or not browser_id:
            return 0
        attached = self.env['mautomate.event'].sudo()._attach_anonymous_history(partner, anonymous_ids=[browser_id])
        self.env['mautomate.proven.browser'].sudo()._prove(browser_id, partner, proof)
        return attached

    def _merge_visitor(self, target):
        # Only the merged visitors' own history moves: this runs on a manager's request too (partner merge).
        self.env['mautomate.event'].sudo()._attach_anonymous_history(target.partner_id, visitors=self)
        self.env.cr.execute("UPDATE mautomate_event SET visitor_id = %s WHERE visitor_id = ANY(%s)", (target.id, self.ids))
        self.env['mautomate.event'].invalidate_model(['visitor_id'])
        return super()._merge_visitor(target)
