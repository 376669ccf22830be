import re
import time
from urllib.parse import urlsplit

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from .mautomate_form_question import EMAIL_FIELD, FORBIDDEN_FIELDS

SLUG_PATTERN = re.compile(r'^[a-z0-9]+(?:-[a-z0-9]+)*$')
# A rendered form's token is refused after a day: the visitor reloads the page.
FORM_TOKEN_MAX_AGE = 24 * 3600
# The signed link to the form's file works this long.
FILE_LINK_MAX_AGE = 7 * 24 * 3600
# Contact fields whose lead field has another name; other fields keep theirs (the e-mail is set apart).
LEAD_FIELD_OF_PARTNER_FIELD = {'name': 'contact_name', 'company_name': 'partner_name'}


class MautomateForm(models.Model):
    """ A progressive-profiling form: asks a few questions at a time from its queue, skipping what
    is known of the visitor, and files the answers on the contact (its empty fields) and its lead. """
    _name = 'mautomate.form'
    _inherit = ['mail.thread', 'mautomate.ab.mixin']
    _description = 'Marketing Form'
    _order = 'name, id'

    name = fields.Char('Title', required=True, translate=True, tracking=True)
    slug = fields.Char(required=True, copy=False,
                       tracking=True, help="The form's address: /mautomate/form/<slug>. Lower-case letters, digits and dashes.")
    active = fields.Boolean(default=True, tracking=True)
    website_url = fields.Char('Page', compute='_compute_website_url')
    question_ids = fields.One2many('mautomate.form.question', 'form_id', 'Questions', copy=True)
    questions_per_page = fields.Integer('Questions at Once', default=3, required=True,
                                        tracking=True, help="How many questions a visitor sees at once, the e-mail included.")
    min_fill_seconds = fields.Integer('Minimum Fill Time (s)', default=2,
                                      tracking=True, help="A form sent back faster than this is refused: robots fill forms at once.")
    intro = fields.Html('Introduction', translate=True)
    # the lead
    create_lead = fields.Boolean('Create or Update a Lead', default=True,
                                 tracking=True, help="A submit updates the contact's open lead, or creates one.")
    lead_team_id = fields.Many2one('crm.team', 'Sales Team', check_company=True, tracking=True)
    lead_tag_ids = fields.Many2many('crm.tag', string='Lead Tags', tracking=True)
    campaign_id = fields.Many2one('utm.campaign', tracking=True)
    source_id = fields.Many2one('utm.source', tracking=True)
    medium_id = fields.Many2one('utm.medium', tracking=True)
    # consent and thanks
    consent_text = fields.Text('Consent', translate=True,
                               help="What the visitor agrees to by ticking the box. The text, time and IP address are kept.")
    double_optin = fields.Boolean('Double Opt-in',
                                  tracking=True, help="The visitor confirms the e-mail address by a link before marketing mail goes out.")
    thanks_message = fields.Html('Thank-you Message', translate=True)
    thanks_url = fields.Char('Thank-you Page', tracking=True, help="Where the visitor goes after a submit, instead of the message.")
    file = fields.Binary('File to Deliver', attachment=True, help="The visitor gets a download link after the submit.")
    file_name = fields.Char()
    flow_ids = fields.Many2many('mautomate.flow', string='Flows Started', check_company=True,
                                tracking=True, help="A submit enrols the contact in these flows when they run. Flows whose trigger is "
                                                    "a form submit start on any form too.")
    submit_count = fields.Integer('Submits', compute='_compute_submit_count')
    _check_company_auto = True
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="Served only on this company's websites. Empty: shared by all companies.")

    _sql_constraints = [('slug_unique', 'UNIQUE(slug)', "Another form has this address (slug).")]

    @api.onchange('name')
    def _onchange_name_slug(self):
        if not self.slug and self.name:
            self.slug = self.env['ir.http']._slugify(self.name)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not vals.get('slug') and vals.get('name'):
                vals['slug'] = self._free_slug(self.env['ir.http']._slugify(vals['name']))
        self._check_slugs_free([vals['slug'] for vals in vals_list if vals.get('slug')])
        return super().create(vals_list)

    def write(self, vals):
        if vals.get('slug'):
            self._check_slugs_free([vals['slug']] * len(self), self)
        return super().write(vals)

    @api.model
    def _check_slugs_free(self, slugs, forms=None):
        """ A message before the INSERT or UPDATE, rather than the UNIQUE index's error in the log (which stays, for
        two marketers saving at once). """
        taken = self.with_context(active_test=False).search_count([('slug', 'in', slugs), ('id', 'not in', (forms or self).ids)])
        if taken or len(set(slugs)) < len(slugs):
            raise ValidationError(self.env._("Another form has this address (slug)."))

    def copy_data(self, default=None):
        vals_list = super().copy_data(default=default)
        if 'name' in (default or {}) or self.env.context.get('mautomate_keep_title'):
            return vals_list
        return [dict(vals, name=self.env._("%s (copy)", form.name)) for form, vals in zip(self, vals_list, strict=True)]

    def _mautomate_ab_copy(self, label):
        # Its title is the page's heading: a visitor shown variant B must not read that it is a test (nor its lead).
        self.ensure_one()
        return self.with_context(mautomate_keep_title=True).copy({'slug': self._free_slug(f'{self.slug}-{label.lower()}')})

    @api.model
    def _free_slug(self, slug):
        """ The slug, with a number added when another form has it. """
        taken = set(self.with_context(active_test=False).search([('slug', '=like', f'{slug}%')]).mapped('slug'))
        candidate, number = slug, 1
        while candidate in taken:
            number += 1
            candidate = f'{slug}-{number}'
        return candidate

    @api.depends('slug')
    def _compute_website_url(self):
        for form in self:
            form.website_url = f'/mautomate/form/{form.slug}' if form.slug else False

    def _compute_submit_count(self):
        counts = dict(self.env['mautomate.event'].sudo()._read_group(
            [('event_type', '=', 'form_submit'), ('res_model', '=', self._name), ('res_id', 'in', self.ids)],
            ['res_id'], ['__count']))
        for form in self:
            form.submit_count = counts.get(form._origin.id, 0)

    @api.constrains('slug')
    def _check_slug(self):
        for form in self.filtered(lambda form: not SLUG_PATTERN.match(form.slug or '')):
            raise ValidationError(self.env._(
                "Form %(form)s: the address \"%(slug)s\" may only hold lower-case letters, digits and single dashes.",
                form=form.name, slug=form.slug))

    @api.constrains('questions_per_page', 'min_fill_seconds', 'thanks_url')
    def _check_settings(self):
        for form in self:
            if form.questions_per_page < 1:
                raise ValidationError(self.env._("Form %s: show at least one question at once.", form.name))
            if form.min_fill_seconds < 0:
                raise ValidationError(self.env._("Form %s: the minimum fill time cannot be negative.", form.name))
            url = urlsplit(form.thanks_url or '')
            web_address = url.scheme in ('http', 'https') and bool(url.netloc)
            local_path = not url.scheme and not url.netloc and url.path.startswith('/')
            if form.thanks_url and not (web_address or local_path):
                raise ValidationError(self.env._(
                    "Form %s: the thank-you page is a web address (https://...) or a path of this website (/...).", form.name))

    @api.constrains('question_ids')
    def _check_questions(self):
        for form in self:
            seen = set()
            for question in form.question_ids:
                key = (question.model, question.field_name)
                if key in seen:
                    raise ValidationError(self.env._("Form %(form)s asks the field %(field)s twice.",
                                                     form=form.name, field=question.field_id.field_description))
                seen.add(key)
            if EMAIL_FIELD not in seen:
                raise ValidationError(self.env._(
                    "Form %s has no e-mail question: add one on the contact's E-mail field, it finds the contact.",
                    form.name))

    # ------------------------------------------------------------
    # A/B tests: a view is shown the form, a conversion sent it
    # ------------------------------------------------------------

    def _mautomate_ab_event_types(self):
        return 'form_view', 'form_submit'

    def _mautomate_ab_check_start(self, test):
        # A submit in a pop-up counts for the pop-up's test: the two tests would share their conversions.
        popups = self.env['mautomate.popup'].sudo().with_context(active_test=False).search([('form_id', '=', self.id)])
        if popups._mautomate_ab_running_tests():
            raise UserError(self.env._(
                "A pop-up showing form %s is being A/B tested: stop that test first, the two would count the same submits.",
                self.name))

    def _mautomate_ab_tests_changed(self):
        # The pop-ups' cached data lists the variants of their forms.
        self.env.registry.clear_cache()

    def _mautomate_ab_family(self):
        """ These forms and their variants in A/B tests: a visitor who sent one of them sent "the form". """
        variants = self.env['mautomate.ab.variant'].sudo().search([('res_model', '=', self._name), ('test_id.res_id', 'in', self.ids)])
        return self | self.browse(variants.mapped('res_id'))

    def _log_view(self, test, origin):
        """ The form_view event of this form shown to a visitor (origin as for _submit), naming the A/B test that chose it. """
        partner = origin.get('user_partner')
        return self.env['mautomate.event'].sudo()._ingest([self._event_vals(
            'form_view', origin, partner.id if partner else None, {'ab_test': test.id} if test else {})])

    def _event_vals(self, event_type, origin, partner_id, payload):
        """ An event of this form, for _ingest: where it was shown or sent (origin as for _submit), its contact, its payload. """
        self.ensure_one()
        return {
            'event_type': event_type,
            'source': 'website',
            'name': self.name,
            'url': origin.get('url'),
            'visitor_id': origin['visitor'].id if origin.get('visitor') else None,
            'anonymous_id': origin.get('browser_id'),
            'partner_id': partner_id,
            'res_model': self._name,
            'res_id': self.id,
            'payload': {'form': self.slug, **payload},
        }

    @api.readonly
    def action_view_submits(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.name, [
            ('event_type', '=', 'form_submit'), ('res_model', '=', self._name), ('res_id', '=', self.id)])

    # ------------------------------------------------------------
    # Rendering for a visitor
    # ------------------------------------------------------------

    def _questions_to_ask(self, partner, lead, answered=frozenset()):
        """ The e-mail and "always ask" questions, then the first questions of the queue the known
        contact (and its lead) have not answered, nor the browser (`answered`: input names), up to the
        number shown at once. """
        self.ensure_one()
        asked = self.question_ids.filtered(lambda question: question._is_email() or question.always_ask)
        open_slots = self.questions_per_page - len(asked)
        for question in self.question_ids - asked:
            if open_slots <= 0:
                break
            if question._input_name() not in answered and not self._is_answered(question, partner, lead):
                asked |= question
                open_slots -= 1
        return self.question_ids & asked

    @api.model
    def _answered_by_browser(self, browser_id):
        """ Input names of the questions this browser answered in any form (its form_submit events). """
        if not browser_id:
            return frozenset()
        self.env['mautomate.event'].flush_model()
        self.env.cr.execute(SQL("""
            SELECT DISTINCT jsonb_object_keys(payload->'answers') FROM mautomate_event
             WHERE anonymous_id = %s AND event_type = 'form_submit' AND res_model = %s
               AND jsonb_typeof(payload->'answers') = 'object'
        """, browser_id, self._name))
        return frozenset(row[0] for row in self.env.cr.fetchall())

    def _is_answered(self, question, partner, lead):
        record = partner if question.model == 'res.partner' else lead
        return bool(record) and not self._is_empty(record, question.field_name)

    @api.model
    def _is_empty(self, record, field_name):
        """ Whether a record's field holds no answer. A contact created from an e-mail alone is named
        after it: that name is no answer. """
        value = record[field_name]
        if record._name == 'res.partner' and field_name == 'name':
            return not value or value in (record.email, record.email_normalized)
        return value is False or value == '' or (isinstance(value, models.BaseModel) and not value)

    @api.model
    def _open_lead(self, partner):
        if not partner:
            return self.env['crm.lead']
        return self.env['crm.lead'].sudo().search(
            [('partner_id', '=', partner.id), '|', ('stage_id', '=', False), ('stage_id.is_won', '=', False)],
            order='id DESC', limit=1)

    def _sign_token(self, issued_at, questions, test=None):
        """ The token a rendered form carries: when it was rendered, which questions it asks and the A/B test that
        showed it (0: none). """
        self.ensure_one()
        test_id = test.id if test else 0
        message = f'{self.id}:{issued_at}:{",".join(map(str, questions.ids))}:{test_id}'
        signature = tools.hmac(self.env(su=True), 'mautomate_form', message)
        return f'{issued_at}.{"-".join(map(str, questions.ids))}.{test_id}.{signature}'

    def _read_token(self, token):
        """ (rendered at, questions asked, A/B test) of a token this form signed, else None. """
        self.ensure_one()
        parts = (token or '').split('.')
        if len(parts) != 4:
            return None
        issued_at, question_ids, test_id, signature = parts
        if not issued_at.isdigit() or not test_id.isdigit() or not re.fullmatch(r'[0-9]+(-[0-9]+)*', question_ids):
            return None
        questions = self.question_ids.browse(int(qid) for qid in question_ids.split('-')) & self.question_ids
        test = self.env['mautomate.ab.test'].sudo().browse(int(test_id) or [])
        expected = self._sign_token(int(issued_at), questions, test).rpartition('.')[2]
        if len(questions) != len(question_ids.split('-')) or not tools.consteq(expected, signature):
            return None
        if not any(question._is_email() for question in questions):
            return None  # the form's e-mail question was changed since
        return int(issued_at), questions, test.exists()

    def _file_link(self, partner):
        """ A link to the form's file for this contact, signed and valid FILE_LINK_MAX_AGE. """
        self.ensure_one()
        expires = int(time.time()) + FILE_LINK_MAX_AGE
        signature = tools.hmac(self.env(su=True), 'mautomate_form_file', (self.id, partner.id or 0, expires))
        return f'/mautomate/form/{self.slug}/file/{partner.id or 0}/{expires}/{signature}'

    def _check_file_link(self, partner_id, expires, signature):
        self.ensure_one()
        expected = tools.hmac(self.env(su=True), 'mautomate_form_file', (self.id, partner_id, expires))
        return expires >= time.time() and tools.consteq(expected, signature or '')

    # ------------------------------------------------------------
    # Submission
    # ------------------------------------------------------------

    def _submit(self, answers, origin):
        """ File valid answers {question: value} of a visitor: the contact of the e-mail (created when
        new), its lead, consent, the form_submit event and the flows. A typed e-mail is a claim: only empty
        fields of the contact and its open lead are filled, differing answers are noted in the chatter; the
        logged-in user's own e-mail is proven and updates them.

        origin: {'ip', 'visitor' (website.visitor), 'browser_id', 'url', 'utm' (campaign_id, ... ids),
        'consent' (bool), 'user_partner' (the logged-in user's contact), 'popup' (the pop-up it was sent in),
        'ab_test' (the running A/B test that showed the form or the pop-up)}. Returns (contact, lead, event);
        no contact when the e-mail is the company's or an employee's and not the logged-in user's own.
        """
        self.ensure_one()
        form = self.sudo()
        email = tools.email_normalize(next(value for question, value in answers.items() if question._is_email()))
        partner_answers = {question.field_name: value for question, value in answers.items()
                           if question.model == 'res.partner' and value is not None}
        lead_answers = {question.field_name: value for question, value in answers.items()
                        if question.model == 'crm.lead' and value is not None}
        Partner = self.env['res.partner'].sudo()
        # A double click's second submit waits for the first, then restarts and updates the lead the first made.
        Partner._mautomate_lock_emails([email])
        partner = Partner._mautomate_find_or_create_by_email(
            {email: partner_answers.get('name')}, {email: {name: value for name, value in partner_answers.items()
                                                           if name not in FORBIDDEN_FIELDS}})[email]
        protected = partner._mautomate_history_protected()
        if protected and partner != origin.get('user_partner'):
            # Anyone can type the company's or an employee's e-mail: the submit names no contact.
            lead = form._file_lead(Partner, partner_answers, lead_answers, {}, origin) if form.create_lead else None
            # Nor is it the contact this browser was known as: the event names no browser, whose contact it would get.
            return Partner, lead, form._log_submit(Partner, lead, answers, {}, {**origin, 'visitor': None, 'browser_id': None})
        # An employee's own contact is not written from a website form either.
        writable = partner - protected
        # A typed e-mail is a claim: it fills empty fields only. The logged-in user's own e-mail is proven: it updates.
        proven = bool(partner) and partner == origin.get('user_partner')
        differing = {}
        fill = {}
        for name, value in partner_answers.items():
            current = partner[name].id if partner._fields[name].type == 'many2one' else partner[name]
            if writable and (self._is_empty(partner, name) or (proven and name != EMAIL_FIELD[1])):
                if current != value:
                    fill[name] = value
            elif current != value:
                differing[name] = value
        if fill:
            writable.write(fill)
        lead = form._file_lead(partner, partner_answers, lead_answers, differing, origin, proven) if form.create_lead else None
        if differing and not lead:
            partner.message_post(body=form._differing_note(partner, differing), subtype_xmlid='mail.mt_note',
                                 mautomate_tracking=True)
        if form.consent_text and origin.get('consent'):
            consent = self.env['mautomate.consent'].sudo().create({
                'partner_id': partner.id, 'form_id': form.id, 'email': email, 'text': form.consent_text,
                'ip_address': origin.get('ip'), 'state': 'pending' if form.double_optin else 'confirmed',
            })
            if form.double_optin:
                consent._request_confirmation()
        event = form._log_submit(partner, lead, answers, differing, origin)
        for flow in form.flow_ids.filtered(lambda flow: flow.state == 'running'):
            flow._enroll({partner.id: lead.id if lead else None})
        return partner, lead, event

    def _file_lead(self, partner, partner_answers, lead_answers, differing, origin, proven=False):
        """ The contact's open lead, else a new one, holding this submit's answers. An open lead keeps its values
        unless `proven` (the logged-in user's own): its empty fields are filled, differing answers noted. """
        Lead = self.env['crm.lead'].sudo().with_context(mautomate_keep_partner_fields=True)
        values = {LEAD_FIELD_OF_PARTNER_FIELD.get(name, name): value for name, value in partner_answers.items()}
        values = {name: value for name, value in values.items() if name in Lead._fields and name not in FORBIDDEN_FIELDS}
        values.update(lead_answers, email_from=partner_answers['email'])
        utm = {name: self[name].id or (origin.get('utm') or {}).get(name) for name in ('campaign_id', 'source_id', 'medium_id')}
        # As website_crm gives a website form's lead: the website's team when the form names none, its salesperson.
        website = self.env['website'].get_current_website()
        team, user = self.lead_team_id or website.crm_default_team_id, website.crm_default_user_id
        lead = self._open_lead(partner).with_context(mautomate_keep_partner_fields=True)
        lead_differing = {}
        if lead:
            if not proven:
                values, lead_differing = self._lead_values_of_claim(lead, values, differing)
            values.update({name: value for name, value in utm.items() if value and not lead[name]})
            if team and not lead.team_id:
                values['team_id'] = team.id
                # With its team: a salesperson alone would move the lead to the salesperson's team.
                values['user_id'] = lead.user_id.id or user.id
            lead.write({**values, 'tag_ids': [(4, tag.id) for tag in self.lead_tag_ids]})
        else:
            use_leads = self.env.ref('crm.group_use_lead') in self.env.ref('base.group_user').sudo().implied_ids
            lead = Lead.create({
                'name': self.env._("%(form)s: %(contact)s", form=self.name, contact=partner.name or partner_answers['email']),
                'partner_id': partner.id,
                'type': 'lead' if (team.use_leads if team else use_leads) else 'opportunity',
                'user_id': user.id,
                'team_id': team.id,
                'tag_ids': [(6, 0, self.lead_tag_ids.ids)],
                **{name: value for name, value in utm.items() if value},
                **values,
            })
        if origin.get('visitor'):
            lead.visitor_ids = [(4, origin['visitor'].id)]
        if differing or lead_differing:
            lead.message_post(body=self._differing_note(partner, differing, lead, lead_differing), subtype_xmlid='mail.mt_note',
                              mautomate_tracking=True)
        return lead.with_context(mautomate_keep_partner_fields=False)

    def _lead_values_of_claim(self, lead, values, differing):
        """ (values to write, differing {field: answer}) of a claimed submit on an open lead: its empty fields are
        filled; the answers that differ from its values are returned, but those already noted for the contact. """
        partner_field_of = {lead_field: name for name, lead_field in LEAD_FIELD_OF_PARTNER_FIELD.items()}
        fill, lead_differing = {}, {}
        for name, value in values.items():
            current = lead[name].id if lead._fields[name].type == 'many2one' else lead[name]
            if self._is_empty(lead, name):
                fill[name] = value
            elif name == 'email_from':
                continue  # the same contact's address: found by it, kept as the lead spells it
            elif current != value and differing.get(partner_field_of.get(name, name), object()) != value:
                lead_differing[name] = value
        return fill, lead_differing

    def _differing_note(self, partner, differing, lead=None, lead_differing=None):
        """ The internal note listing answers that differ from the values on file (typed, then kept). """
        def items(record, answers):
            return Markup().join(Markup('<li>%s: %s (%s)</li>') % (
                record._fields[name].get_description(self.env)['string'], self._display_value(record, name, value),
                self._display_value(record, name, record[name])) for name, value in answers.items())

        note = Markup()
        if differing:
            note += Markup('<p>%s</p><ul>%s</ul>') % (self.env._(
                "Form %s: answers that differ from the contact's values (the contact keeps its own):", self.name),
                items(partner, differing))
        if lead_differing:
            note += Markup('<p>%s</p><ul>%s</ul>') % (self.env._(
                "Form %s: answers that differ from the lead's values (the lead keeps its own):", self.name),
                items(lead, lead_differing))
        return note

    @api.model
    def _display_value(self, record, name, value):
        if isinstance(value, models.BaseModel):
            return value.display_name or ''
        if record._fields[name].type == 'many2one':
            return self.env[record._fields[name].comodel_name].sudo().browse(value).display_name
        return '' if value is None or value is False else str(value)

    def _log_submit(self, partner, lead, answers, differing, origin):
        """ The form_submit event with the answers (differing ones marked); the browser's history joins the contact. """
        def payload_value(question, value):
            if question.input_type == 'country' and value:
                return self.env['res.country'].sudo().browse(value).code
            return value

        visitor = origin.get('visitor')
        Event = self.env['mautomate.event'].sudo()
        events = Event._ingest([{
            **self._event_vals('form_submit', origin, partner.id or None, {
                'answers': {question._input_name(): payload_value(question, value)
                            for question, value in answers.items() if value is not None},
                'differing': sorted(differing),
                **({'ab_test': origin['ab_test'].id} if origin.get('ab_test') else {}),
                **({'popup': origin['popup'].id} if origin.get('popup') else {}),
            }),
            'lead_id': lead.id if lead else None,
            # A campaign the request names but the database did not know yet: Odoo made it for the lead.
            **{name: (origin.get('utm') or {}).get(name) or (lead[name].id if lead else None)
               for name in ('campaign_id', 'source_id', 'medium_id')},
        }])
        if partner and (visitor or origin.get('browser_id')):
            Event._attach_anonymous_history(partner, visitors=visitor, anonymous_ids=[origin.get('browser_id')])
        return events
