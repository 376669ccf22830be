import re

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

QUESTION_MODELS = ('res.partner', 'crm.lead')
INPUT_TYPES = [
    ('text', 'Text'),
    ('email', 'E-mail'),
    ('tel', 'Phone'),
    ('select', 'Drop-down List'),
    ('textarea', 'Multi-line Text'),
    ('checkbox', 'Checkbox'),
    ('number', 'Number'),
    ('country', 'Country'),
]
# The input types each kind of field can be asked with.
INPUTS_BY_FIELD_TYPE = {
    'char': {'text', 'email', 'tel', 'textarea'},
    'text': {'text', 'textarea'},
    'selection': {'select'},
    'boolean': {'checkbox'},
    'integer': {'number'},
    'float': {'number'},
    'monetary': {'number'},
}
# Fields a visitor never sets, whatever their type: who owns, links or classifies the record.
FORBIDDEN_FIELDS = {
    'id', 'active', 'company_id', 'user_id', 'user_ids', 'partner_id', 'parent_id', 'commercial_partner_id',
    'is_company', 'type', 'team_id', 'stage_id', 'email_normalized', 'email_from', 'partner_share', 'employee',
    'lang', 'tz', 'vat', 'ref', 'barcode', 'signup_token', 'probability', 'automated_probability',
    'is_blacklisted', 'message_bounce', 'mautomate_no_tracking', 'campaign_id', 'source_id', 'medium_id',
    'expected_revenue', 'prorated_revenue', 'recurring_revenue', 'won_status', 'priority',
}
PHONE_PATTERN = re.compile(r'^\+?[0-9 ().\-/]{4,32}$')
# Text fields of a phone number: asked as one (the visitor's keyboard shows digits, the answer is checked).
PHONE_FIELDS = {'phone', 'mobile'}
# The contact's e-mail: every form asks it, to find the contact.
EMAIL_FIELD = ('res.partner', 'email')


class MautomateFormQuestion(models.Model):
    """ One question of a form's queue: a field of the contact or of its lead. """
    _name = 'mautomate.form.question'
    _description = 'Marketing Form Question'
    _order = 'form_id, sequence, id'

    form_id = fields.Many2one('mautomate.form', required=True, ondelete='cascade', index=True)
    sequence = fields.Integer(default=10)
    field_id = fields.Many2one(
        'ir.model.fields', required=True, ondelete='cascade',
        domain=[('model', 'in', QUESTION_MODELS), ('store', '=', True),
                ('ttype', 'in', [*INPUTS_BY_FIELD_TYPE, 'many2one'])],
        help="The contact's or the lead's field the answer goes to.")
    model = fields.Char(related='field_id.model', string='Record')
    field_name = fields.Char(related='field_id.name', string='Field Name')
    label = fields.Char(translate=True, compute='_compute_label', store=True, readonly=False)
    # No default: the field picked gives it (a default would win over the compute on create).
    input_type = fields.Selection(INPUT_TYPES, required=True, compute='_compute_input_type', store=True, readonly=False,
                                  precompute=True)
    required = fields.Boolean()
    always_ask = fields.Boolean(help="Shown on every visit, even when the answer is known (the e-mail always is).")

    @api.depends('field_id')
    def _compute_label(self):
        for question in self.filtered(lambda question: question.field_id and not question.label):
            question.label = question.field_id.field_description

    @api.depends('field_id')
    def _compute_input_type(self):
        for question in self.filtered('field_id'):
            field = question.field_id
            if (field.model, field.name) == EMAIL_FIELD:
                question.input_type = 'email'
            elif field.ttype == 'many2one':
                question.input_type = 'country'
            elif field.ttype == 'text':
                question.input_type = 'textarea'
            elif field.ttype == 'char' and field.name in PHONE_FIELDS:
                question.input_type = 'tel'
            elif field.ttype == 'char':
                question.input_type = 'text'
            elif field.ttype in INPUTS_BY_FIELD_TYPE and question.input_type not in INPUTS_BY_FIELD_TYPE[field.ttype]:
                question.input_type = sorted(INPUTS_BY_FIELD_TYPE[field.ttype])[0]

    @api.constrains('field_id', 'input_type')
    def _check_field(self):
        for question in self:
            if error := question._field_error():
                raise ValidationError(self.env._("Form %(form)s, question %(question)s: %(error)s",
                                                 form=question.form_id.name, question=question.label, error=error))

    @api.constrains('form_id', 'field_id')
    def _check_unique_field(self):
        for question in self:
            if len(question.form_id.question_ids.filtered_domain([('field_id', '=', question.field_id.id)])) > 1:
                raise ValidationError(self.env._("Form %(form)s asks the field %(field)s twice.",
                                                 form=question.form_id.name, field=question.field_id.field_description))

    def _field_error(self):
        """ Why a visitor may not answer this question's field, or None. """
        self.ensure_one()
        model_name, name = self.field_id.model, self.field_id.name
        if model_name not in QUESTION_MODELS:
            return self.env._("only a field of the contact or of the lead can be asked.")
        field = self.env[model_name]._fields.get(name)
        if not field:
            return self.env._("the field %s does not exist.", name)
        if name in FORBIDDEN_FIELDS or field.groups:
            return self.env._("the field %s may not be set by a website visitor.", name)
        if not field.store or field.readonly or field.related:
            return self.env._("the field %s is not writable.", name)
        if field.type == 'many2one':
            if field.comodel_name != 'res.country':
                return self.env._("the field %s links to other records: only a country can be asked.", name)
            allowed = {'country'}
        else:
            allowed = INPUTS_BY_FIELD_TYPE.get(field.type)
        if not allowed:
            return self.env._("fields of type %s cannot be asked.", field.type)
        if self.input_type not in allowed:
            labels = dict(self._fields['input_type']._description_selection(self.env))
            return self.env._("the field %(field)s is asked with: %(inputs)s.",
                              field=name, inputs=", ".join(labels[kind] for kind in sorted(allowed)))
        return None

    # ------------------------------------------------------------
    # Answers
    # ------------------------------------------------------------

    def _input_name(self):
        """ The name of the question's input: the field's, prefixed for a lead's field. """
        self.ensure_one()
        return self.field_name if self.model == 'res.partner' else f'lead_{self.field_name}'

    def _max_length(self):
        self.ensure_one()
        field = self.env[self.model]._fields[self.field_name]
        limit = 4000 if self.input_type == 'textarea' else 254 if self.input_type == 'email' else 256
        return min(limit, getattr(field, 'size', None) or limit)

    def _selection_options(self):
        """ [(value, label)] of a drop-down or country question. """
        self.ensure_one()
        if self.input_type == 'country':
            return [(str(country.id), country.name) for country in self.env['res.country'].sudo().search([])]
        field = self.env[self.model]._fields[self.field_name]
        return [(str(value), label) for value, label in field._description_selection(self.env)]

    def _parse_answer(self, raw):
        """ (value to write, error message) of what the visitor typed; (None, None) when left empty. """
        self.ensure_one()
        text = raw.strip() if isinstance(raw, str) else ''
        if self.input_type == 'checkbox':
            if not text and self.required:
                return None, self.env._("Tick this box to go on.")
            return (bool(text) or None), None
        if not text:
            return None, (self.env._("This field is required.") if self.required or self._is_email() else None)
        if len(text) > self._max_length():
            return None, self.env._("At most %s characters.", self._max_length())
        # Bytes that were not UTF-8 arrive as U+FFFD; PostgreSQL stores no NUL.
        if '\ufffd' in text or '\x00' in text:
            return None, self.env._("Some characters could not be read: type them again.")
        if self.input_type == 'email':
            normalized = tools.email_normalize(text, strict=True)
            return (normalized, None) if normalized else (None, self.env._("Enter a valid e-mail address."))
        if self.input_type == 'tel':
            if not PHONE_PATTERN.match(text) or sum(char.isdigit() for char in text) < 4:
                return None, self.env._("Enter a valid phone number.")
            return text, None
        if self.input_type == 'number':
            field_type = self.env[self.model]._fields[self.field_name].type
            try:
                value = int(text) if field_type == 'integer' else float(text.replace(',', '.'))
            except ValueError:
                return None, self.env._("Enter a whole number.") if field_type == 'integer' else self.env._("Enter a number.")
            if abs(value) >= 2 ** 31 or value != value:  # NaN is not equal to itself
                return None, self.env._("Enter a smaller number.")
            return value, None
        if self.input_type in ('select', 'country'):
            options = dict(self._selection_options())
            if text not in options:
                return None, self.env._("Choose one of the options.")
            return (int(text) if self.input_type == 'country' else text), None
        return text, None

    def _is_email(self):
        self.ensure_one()
        return (self.model, self.field_name) == EMAIL_FIELD
