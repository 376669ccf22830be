import functools
import logging
import time

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.http import request

from ..models.mautomate_form import FORM_TOKEN_MAX_AGE

_logger = logging.getLogger(__name__)

# A form's POST is a few short answers: larger bodies are refused before they are read.
MAX_FORM_BYTES = 64 * 1024
# The hidden field robots fill and people never see.
HONEYPOT_FIELD = 'homepage'


class MautomateForms(http.Controller):

    @http.route('/mautomate/form/<string:slug>', type='http', auth='public', website=True, methods=['GET', 'POST'],
                sitemap=False, max_content_length=MAX_FORM_BYTES)
    def form_page(self, slug, **post):
        """ The form for this visitor (GET), or its submission (POST: Odoo checks the CSRF token first). """
        return self._form(slug, post, embed=False)

    @http.route('/mautomate/form/<string:slug>/embed', type='http', auth='public', website=True,
                methods=['GET', 'POST'], sitemap=False, max_content_length=MAX_FORM_BYTES)
    def form_embed(self, slug, **post):
        """ The same, without the page around it: the website block and the pop-ups fetch it and post to it. """
        return self._form(slug, post, embed=True)

    def _form(self, slug, post, embed):
        form = self._get_form(slug)
        if request.httprequest.method == 'POST':
            return self._submit(form, post, embed)
        origin = self._origin(embed, post)
        # A running A/B test of the form shows this browser its variant, the same every time.
        form, test = form._mautomate_ab_serve(origin['browser_id'])
        questions = form._questions_to_ask(*self._known_contact_and_lead(form))
        # Over its address's limit, the form is still shown: its view is not logged.
        if origin['tracked'] and not request.env['mautomate.rate.limit'].sudo()._hit('form_view', origin['ip']):
            try:
                with request.env.cr.savepoint():
                    form._log_view(test, origin)
            except Exception:
                # Tracking never breaks the page.
                _logger.exception("Could not log the view of form %s", form.slug)
        return self._render_form(form, questions, self._own_values(questions), embed=embed, test=test,
                                 popup_token=self._popup_token(post))

    @http.route('/mautomate/form/<string:slug>/file/<int:partner_id>/<int:expires>/<string:signature>', type='http',
                auth='public', methods=['GET'], sitemap=False, save_session=False)
    def form_file(self, slug, partner_id, expires, signature):
        """ The form's file, by the signed and expiring link given after a submit. """
        form = self._get_form(slug)
        if not form.file or not form._check_file_link(partner_id, expires, signature):
            raise NotFound()
        partner = request.env['res.partner'].sudo().browse(partner_id).exists()
        if partner:
            request.env['mautomate.event'].sudo()._ingest([{
                'event_type': 'download', 'source': 'website', 'name': form.file_name or form.name,
                'url': request.httprequest.url, 'partner_id': partner.id,
                'anonymous_id': request.env['website.visitor']._mautomate_browser_id(),
                'res_model': form._name, 'res_id': form.id,
            }])
        stream = request.env['ir.binary']._get_stream_from(form, 'file', filename=form.file_name or None)
        return stream.get_response(as_attachment=True)

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def _get_form(self, slug):
        # A company's form is served on its company's websites only.
        company_id = request.env['website'].get_current_website()._get_cached('company_id')
        form = request.env['mautomate.form'].sudo().search([('slug', '=', slug), ('company_id', 'in', [False, company_id])], limit=1)
        if not form:
            raise NotFound()
        return form

    def _known_contact_and_lead(self, form):
        """ (contact, its open lead, input names answered) of this browser, for _questions_to_ask: a proven
        contact (the logged-in user, the website visitor's login, a proven browser) with its lead; else none, and
        the answers this browser sent. An e-mail typed in a form is a claim: what that contact had before is not
        this browser's to see, not even by which questions are skipped. Never shows the values themselves. """
        user = request.env.user
        Visitor = request.env['website.visitor']
        browser_id = Visitor._mautomate_browser_id()
        if not user._is_public():
            partner = user.partner_id
        else:
            visitor = Visitor._get_visitor_from_request()
            partner = visitor.sudo().partner_id if visitor else request.env['res.partner']
            partner = partner or request.env['mautomate.proven.browser'].sudo()._partner_of(browser_id)
        partner = partner.sudo()
        if partner:
            return partner, form._open_lead(partner), frozenset()
        return partner, request.env['crm.lead'], form._answered_by_browser(browser_id)

    def _own_values(self, questions):
        """ Values shown back: a logged-in user's own, never anything to a browser that is not logged in. """
        user = request.env.user
        if user._is_public():
            return {}
        partner = user.partner_id.sudo()
        lead = questions.form_id._open_lead(partner)
        values = {}
        for question in questions:
            record = partner if question.model == 'res.partner' else lead
            if record and not questions.form_id._is_empty(record, question.field_name):
                value = record[question.field_name]
                values[question._input_name()] = str(value.id if question.input_type == 'country' else value)
        return values

    def _origin(self, embed, post, create_visitor=False):
        """ Where a form is shown or sent from, as mautomate.form._submit reads it; 'tracked': whether this visitor may be
        tracked (then it has a Browser ID, unless it is one of the company's people). """
        Visitor = request.env['website.visitor']
        tracked = Visitor._mautomate_should_track()
        known = tracked and not Visitor._mautomate_request_is_internal()
        browser_id = Visitor._mautomate_ensure_browser_id() if known else None
        popup, test = (known and request.env['mautomate.popup'].sudo()._mautomate_read_token(
            self._popup_token(post), browser_id)) or (None, None)
        return {
            'tracked': tracked,
            'ip': request.httprequest.remote_addr,
            'visitor': (Visitor._mautomate_request_visitor() if create_visitor else Visitor._get_visitor_from_request())
                       if known else None,
            'browser_id': browser_id,
            # Embedded (a block, a pop-up): the page it is on.
            'url': (embed and request.httprequest.referrer) or request.httprequest.url,
            'utm': Visitor._mautomate_utm_values(),
            'consent': bool(post.get('consent')),
            'user_partner': None if request.env.user._is_public() else request.env.user.partner_id,
            'popup': popup,
            'ab_test': test,
        }

    @staticmethod
    def _popup_token(post):
        """ The token of the pop-up showing the form (its A/B variant, for its browser): asked with it, then sent with it. """
        token = post.get('popup')
        return token if isinstance(token, str) and len(token) <= 200 else None

    def _render_form(self, form, questions, values, errors=None, form_error=None, status=200, embed=False, test=None,
                     popup_token=None):
        """ The form asking `questions`; its token names the A/B test that showed it, `popup_token` the pop-up it is in. """
        token = form._sign_token(int(time.time()), questions, test)
        return request.render('mautomate_marketing.form_embed' if embed else 'mautomate_marketing.form_page', {
            'mform': form, 'questions': questions, 'values': values, 'errors': errors or {},
            'form_error': form_error, 'token': token, 'honeypot_field': HONEYPOT_FIELD,
            'consent_given': bool(values.get('consent')), 'popup_token': popup_token,
        }, status=status)

    def _typed_values(self, form, post):
        """ What the visitor typed, to show back with the errors (escaped by QWeb). """
        values = {}
        for question in form.question_ids:
            value = post.get(question._input_name())
            if isinstance(value, str):
                values[question._input_name()] = value[:question._max_length()]
        values['consent'] = bool(post.get('consent'))
        return values

    def _submit(self, form, post, embed=False):
        ip = request.httprequest.remote_addr
        typed = self._typed_values(form, post)
        # Shown again (errors, expiry), the form keeps the pop-up it is in.
        render = functools.partial(self._render_form, form, values=typed, embed=embed, popup_token=self._popup_token(post))
        if request.env['mautomate.rate.limit'].sudo()._hit('form', ip):
            questions = form._questions_to_ask(*self._known_contact_and_lead(form))
            response = render(questions, status=429, form_error=request.env._(
                "Too many forms were sent from your network in the last minute. Wait a minute and send it again."))
            response.headers['Retry-After'] = '60'
            return response
        if post.get(HONEYPOT_FIELD):
            # A robot: it gets the thank-you it expects, and nothing is stored.
            return self._render_thanks(form, file_link=None, embed=embed)
        token = form._read_token(post.get('mautomate_token'))
        if not token or time.time() - token[0] > FORM_TOKEN_MAX_AGE:
            questions = form._questions_to_ask(*self._known_contact_and_lead(form))
            return render(questions, status=400, form_error=request.env._(
                "This form has expired. Check your answers and send it again."))
        issued_at, questions, test = token
        if time.time() - issued_at < form.min_fill_seconds:
            return render(questions, status=400, test=test, form_error=request.env._(
                "The form was sent too quickly. Check your answers and send it again."))
        answers, errors = {}, {}
        for question in questions:
            value, error = question._parse_answer(post.get(question._input_name()))
            if error:
                errors[question._input_name()] = error
            else:
                answers[question] = value
        if form.consent_text and not post.get('consent'):
            errors['consent'] = request.env._("Tick this box to go on.")
        if errors:
            return render(questions, errors=errors, status=400, test=test, form_error=request.env._(
                "Some answers need your attention."))
        origin = self._origin(embed, post, create_visitor=True)
        # The pop-up's running test counts this submit; else the form's own test that showed it, while it runs.
        origin['ab_test'] = origin['ab_test'] or test.filtered(lambda test: test.state == 'running')
        partner, _lead, _event = form._submit(answers, origin)
        return self._render_thanks(form, file_link=form._file_link(partner) if form.file else None, embed=embed)

    def _render_thanks(self, form, file_link, embed=False):
        if embed:
            # A fetch would follow a redirection itself: the script goes to the thank-you page.
            return request.render('mautomate_marketing.form_thanks_embed',
                                  {'mform': form, 'file_link': file_link, 'redirect': form.thanks_url})
        if form.thanks_url:
            return request.redirect(form.thanks_url, code=303, local=False)
        return request.render('mautomate_marketing.form_thanks', {'mform': form, 'file_link': file_link})
