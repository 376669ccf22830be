import fnmatch

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.tools import SQL


class MautomatePopup(models.Model):
    """ A form shown in a pop-up on chosen pages of the website: on exit intent, after a delay or after
    scrolling; at most once per browser per period (remembered in the browser), never again once sent. """
    _name = 'mautomate.popup'
    _description = 'Marketing Pop-up'
    _order = 'sequence, id'

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10, help="The first pop-up that applies to a page is the one shown.")
    active = fields.Boolean(default=True)
    form_id = fields.Many2one('mautomate.form', required=True, ondelete='cascade')
    website_id = fields.Many2one('website', help="Only on this website; empty: on every website.")
    trigger = fields.Selection([('exit', 'On Exit Intent'), ('delay', 'After a Delay'), ('scroll', 'After Scrolling')],
                               required=True, default='exit',
                               help="Exit intent: the pointer leaves the page by its top (to the tabs or the address bar).")
    delay_seconds = fields.Integer('Delay (s)', default=10)
    scroll_percent = fields.Integer('Scrolled (%)', default=50)
    url_patterns = fields.Text('Pages', help="One page path a line; * stands for any text (/shop*, /blog/*). Empty: every "
                                             "page. The form's own page never shows it.")
    period_days = fields.Integer('Shown at Most Every (days)', default=7, required=True,
                                 help="A browser that saw the pop-up does not see it again for this many days; one "
                                      "that sent the form never does.")

    @api.constrains('delay_seconds', 'scroll_percent', 'period_days')
    def _check_settings(self):
        for popup in self:
            if popup.delay_seconds < 0 or not 0 <= popup.scroll_percent <= 100 or popup.period_days < 0:
                raise ValidationError(self.env._(
                    "Pop-up %s: the delay and the period cannot be negative, and the scrolled part is 0 to 100 %%.",
                    popup.name))

    @api.model_create_multi
    def create(self, vals_list):
        self.env.registry.clear_cache()
        return super().create(vals_list)

    def write(self, vals):
        self.env.registry.clear_cache()
        return super().write(vals)

    def unlink(self):
        self.env.registry.clear_cache()
        return super().unlink()

    @api.model
    @tools.ormcache('website_id')
    def _active_popups(self, website_id):
        """ The active pop-ups of a website, as plain data (read on every page of the website: cached). """
        popups = self.sudo().search([('website_id', 'in', (False, website_id)), ('form_id.active', '=', True)])
        return tuple({
            'id': popup.id, 'form_id': popup.form_id.id, 'slug': popup.form_id.slug, 'trigger': popup.trigger,
            'delay': popup.delay_seconds, 'scroll': popup.scroll_percent, 'period_days': popup.period_days,
            'patterns': tuple(line.strip() for line in (popup.url_patterns or '').splitlines() if line.strip()),
        } for popup in popups)

    @api.model
    def _popups_for_page(self, website_id, path, partner, browser_id):
        """ The pop-ups for a page of this browser: on the path's patterns, without those whose form this contact
        or browser has sent. """
        popups = [popup for popup in self._active_popups(website_id)
                  if not path.startswith(f"/mautomate/form/{popup['slug']}")
                  and (not popup['patterns'] or any(fnmatch.fnmatchcase(path, pattern) for pattern in popup['patterns']))]
        if popups and (partner or browser_id):
            self.env.cr.execute(SQL("""
                SELECT DISTINCT res_id FROM mautomate_event
                 WHERE event_type = 'form_submit' AND res_model = 'mautomate.form' AND res_id = ANY(%s)
                   AND (partner_id = %s OR anonymous_id = %s)
            """, [popup['form_id'] for popup in popups], partner.id or None, browser_id or None))
            sent = {row[0] for row in self.env.cr.fetchall()}
            popups = [popup for popup in popups if popup['form_id'] not in sent]
        return [{key: popup[key] for key in ('id', 'slug', 'trigger', 'delay', 'scroll', 'period_days')} for popup in popups]
