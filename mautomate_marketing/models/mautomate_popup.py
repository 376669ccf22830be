import fnmatch

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL


class MautomatePopup(models.Model):
    """ A form shown in a pop-up on chosen pages of the website: on exit intent, after a delay or after
    scrolling; at most once per browser per period (remembered in the browser), never again once sent. """
    _name = 'mautomate.popup'
    _inherit = ['mail.thread', 'mautomate.ab.mixin']
    _description = 'Marketing Pop-up'
    _order = 'sequence, id'

    name = fields.Char(required=True, translate=True, tracking=True)
    sequence = fields.Integer(default=10, help="The first pop-up that applies to a page is the one shown.")
    active = fields.Boolean(default=True, tracking=True)
    form_id = fields.Many2one('mautomate.form', required=True, ondelete='cascade', check_company=True, tracking=True)
    website_id = fields.Many2one('website', check_company=True, tracking=True, help="Only on this website; empty: on every website.")
    trigger = fields.Selection([('exit', 'On Exit Intent'), ('delay', 'After a Delay'), ('scroll', 'After Scrolling')],
                               required=True, default='exit',
                               tracking=True, help="Exit intent: the pointer leaves the page by its top (to the tabs or the address bar).")
    delay_seconds = fields.Integer('Delay (s)', default=10, tracking=True)
    scroll_percent = fields.Integer('Scrolled (%)', default=50, tracking=True)
    url_patterns = fields.Text('Pages', tracking=True, help="One page path a line; * stands for any text (/shop*, /blog/*). Empty: every "
                                                            "page. The form's own page never shows it.")
    period_days = fields.Integer('Shown at Most Every (days)', default=7, required=True,
                                 tracking=True, help="A browser that saw the pop-up does not see it again for this many days; one "
                                                     "that sent the form never does.")
    _check_company_auto = True
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="Shown only on this company's websites. Empty: shared by all companies.")

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

    # ------------------------------------------------------------
    # A/B tests: a view is the pop-up shown, a conversion its form sent from it
    # ------------------------------------------------------------

    def _mautomate_ab_event_types(self):
        return 'popup_view', 'form_submit'

    def _mautomate_ab_element_sql(self):
        # A view names the pop-up; a submit names its form, and the pop-up it was sent from in its payload.
        return SQL("CASE WHEN res_model = %s THEN res_id WHEN jsonb_typeof(payload->'popup') = 'number' "
                   "THEN (payload->>'popup')::int4 END", self._name)

    def _mautomate_ab_check_start(self, test):
        # A submit counts for one test: the form's own test would share this test's conversions.
        forms = self.browse(test.variant_ids.mapped('res_id')).form_id
        if forms._mautomate_ab_running_tests():
            raise UserError(self.env._(
                "The form of pop-up %s is being A/B tested: stop that test first, the two would count the same submits.",
                self.name))

    def _mautomate_ab_copies_released(self):
        # A variant only showed through its test: deleting the test must not make it a pop-up of its own.
        self.action_archive()

    def _mautomate_ab_tests_changed(self):
        # Which pop-ups show, and how, is cached.
        self.env.registry.clear_cache()

    # ------------------------------------------------------------
    # Serving
    # ------------------------------------------------------------

    def _serving_data(self):
        """ What a page needs of this pop-up, as plain data. """
        self.ensure_one()
        return {
            'id': self.id, 'form_id': self.form_id.id, 'slug': self.form_id.slug, 'trigger': self.trigger,
            'delay': self.delay_seconds, 'scroll': self.scroll_percent, 'period_days': self.period_days,
            'patterns': tuple(line.strip() for line in (self.url_patterns or '').splitlines() if line.strip()),
            'form_ids': tuple(self.form_id._mautomate_ab_family().ids),
        }

    @api.model
    @tools.ormcache('website_id')
    def _active_popups(self, website_id):
        """ The active pop-ups of a website, as plain data (read on every page of the website: cached). A pop-up made
        as another's A/B variant only shows through that test; one with a test decides what it shows per browser. """
        variants = self.env['mautomate.ab.variant'].sudo().search([('res_model', '=', self._name)])
        variant_only = [variant.res_id for variant in variants if variant.res_id != variant.test_id.res_id]
        company = self.env['website'].browse(website_id)._get_cached('company_id')
        popups = self.sudo().search([('website_id', 'in', (False, website_id)), ('form_id.active', '=', True),
                                     ('company_id', 'in', (False, company)), ('id', 'not in', variant_only)])
        tested = set(self.env['mautomate.ab.test'].sudo().search(
            [('res_model', '=', self._name), ('res_id', 'in', popups.ids), ('state', 'in', ('running', 'won'))]).mapped('res_id'))
        return tuple({**popup._serving_data(), 'tested': popup.id in tested} for popup in popups)

    @api.model
    def _popups_for_page(self, website_id, path, partner, browser_id):
        """ The pop-ups for a page of this browser: the variant its A/B test shows this browser, on the path's
        patterns, without those whose form this contact or browser has sent; each with a token for its view. """
        candidates = []
        for popup in self._active_popups(website_id):
            test_id = 0
            if popup['tested']:
                shown, test = self.browse(popup['id'])._mautomate_ab_serve(browser_id)
                popup, test_id = shown._serving_data(), test.id
            if not path.startswith(f"/mautomate/form/{popup['slug']}") and (
                    not popup['patterns'] or any(fnmatch.fnmatchcase(path, pattern) for pattern in popup['patterns'])):
                candidates.append((popup, test_id))
        if candidates and (partner or browser_id):
            self.env.cr.execute(SQL("""
                SELECT DISTINCT res_id FROM mautomate_event
                 WHERE event_type = 'form_submit' AND res_model = 'mautomate.form' AND res_id = ANY(%s)
                   AND (partner_id = %s OR anonymous_id = %s)
            """, [form_id for popup, _test in candidates for form_id in popup['form_ids']], partner.id or None, browser_id or None))
            sent = {row[0] for row in self.env.cr.fetchall()}
            candidates = [(popup, test_id) for popup, test_id in candidates if not sent & set(popup['form_ids'])]
        return [{**{key: popup[key] for key in ('id', 'slug', 'trigger', 'delay', 'scroll', 'period_days')},
                 'token': self.browse(popup['id'])._mautomate_sign((popup['id'], test_id), browser_id) if browser_id else None}
                for popup, test_id in candidates]

    @api.model
    def _mautomate_read_token(self, token, browser_id):
        """ (pop-up, running A/B test) of a token signed for `browser_id`, or None when it was not. """
        ids = self._mautomate_unsign(token, browser_id, 2) if browser_id else None
        popup = ids and self.sudo().browse(ids[0]).exists()
        if not popup:
            return None
        return popup, self.env['mautomate.ab.test'].sudo().browse(ids[1] or []).exists().filtered(lambda test: test.state == 'running')
