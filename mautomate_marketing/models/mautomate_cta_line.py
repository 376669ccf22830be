import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..tools.url_patterns import PATH_QUERY, glob_to_like
from .mautomate_event import EVENT_TYPES

SAFE_URL = re.compile(r'^(/|#|https?://|mailto:|tel:)', re.IGNORECASE)


class MautomateCtaLine(models.Model):
    """ One (condition -> variant) line of a smart call to action. """
    _name = 'mautomate.cta.line'
    _description = 'Smart Call-to-Action Line'
    _order = 'sequence, id'

    cta_id = fields.Many2one('mautomate.cta', 'Call to Action', required=True, ondelete='cascade', index=True)
    sequence = fields.Integer(default=10)
    condition = fields.Selection(
        [('has', 'Has done'), ('has_not', 'Has not done'), ('always', 'Always (fallback)')],
        required=True, default='has',
        help="Has done / Has not done: whether the visitor's browser or contact has an event of this type (and name, URL).\n"
             "Always: the fallback, also shown to visitors who refused tracking and without JavaScript.")
    event_type = fields.Selection(EVENT_TYPES)
    name_pattern = fields.Char('Event Name Pattern', help="'*' matches any text, e.g. 'E-book*'. Case-insensitive.")
    url_pattern = fields.Char(
        'URL Pattern', help="'*' matches any text. '/pricing*' matches the path and query on any site; a pattern with a "
                            "scheme and host matches the whole URL. Case-insensitive.")
    label = fields.Char('Text', required=True, translate=True)
    url = fields.Char('Link', required=True, default='/contactus',
                      help="A path on this website (/contactus), a web address (https://...), mailto: or tel:.")
    style = fields.Selection([
        ('primary', 'Primary Button'),
        ('secondary', 'Secondary Button'),
        ('outline-primary', 'Outline Button'),
        ('link', 'Link'),
    ], required=True, default='primary')

    # Checked in Python, before the INSERT: a database CHECK would log each marketer's typo as an error.
    @api.constrains('condition', 'event_type')
    def _check_condition_event_type(self):
        if self.filtered(lambda line: line.condition != 'always' and not line.event_type):
            raise ValidationError(self.env._("A line with a condition needs an event type."))

    @api.constrains('url')
    def _check_safe_url(self):
        if any(not SAFE_URL.match(line.url or '') for line in self):
            raise ValidationError(self.env._("The link must be a path (/...), a web address (http(s)://...), mailto: or tel:."))

    @api.depends('cta_id', 'label')
    def _compute_display_name(self):
        for line in self:
            line.display_name = f'{line.cta_id.name}: {line.label}' if line.cta_id else line.label

    def _mautomate_condition_sql(self, browser_id):
        """ Whether the visitor (`browser_id`, and the contact of the CTE `who`) has a matching event. """
        self.ensure_one()
        name_like = glob_to_like(self.name_pattern.strip()) if (self.name_pattern or '').strip() else None
        url_pattern = (self.url_pattern or '').strip()
        url_like = glob_to_like(url_pattern) if url_pattern else None
        return SQL(
            """
            EXISTS(SELECT 1 FROM mautomate_event e
                    WHERE (e.anonymous_id = %(browser)s OR e.partner_id = who.partner_id) AND e.event_type = %(type)s
                      AND (%(name_like)s::varchar IS NULL OR e.name ILIKE %(name_like)s)
                      AND (%(url_like)s::varchar IS NULL
                           OR (CASE WHEN %(url_full)s THEN e.url ELSE %(path)s END) ILIKE %(url_like)s
                           OR (NOT %(url_full)s AND split_part(%(path)s, '?', 1) ILIKE %(url_like)s)))
            """,
            browser=browser_id, type=self.event_type, name_like=name_like, url_like=url_like, url_full='://' in url_pattern,
            path=SQL(PATH_QUERY))
