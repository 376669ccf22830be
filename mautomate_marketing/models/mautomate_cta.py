from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..tools.event_validation import MAX_URL_LENGTH


class MautomateCta(models.Model):
    """ A website call to action whose text and link depend on what the visitor has done. """
    _name = 'mautomate.cta'
    _inherit = ['mail.thread', 'mautomate.ab.mixin']
    _description = 'Smart Call-to-Action'
    _order = 'name, id'

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    line_ids = fields.One2many('mautomate.cta.line', 'cta_id', 'Variants', copy=True,
                               help="Checked in order for the visitor: the first line whose condition holds is shown.")
    view_count = fields.Integer('Views', compute='_compute_event_counts')
    click_count = fields.Integer('Clicks', compute='_compute_event_counts')
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="Shown only on this company's websites. Empty: shared by all companies.")

    def init(self):
        # A CTA's views and clicks, for its counters; only CTA events carry this model, so only they pay for it.
        tools.create_index(self.env.cr, 'mautomate_event_cta_idx', 'mautomate_event', ['res_id', 'event_type'],
                           where="res_model = 'mautomate.cta'")

    def _compute_event_counts(self):
        counts = {(res_id, event_type): count for res_id, event_type, count in self.env['mautomate.event'].sudo()._read_group(
            [('res_model', '=', self._name), ('res_id', 'in', self.ids), ('event_type', 'in', ('cta_view', 'cta_click'))],
            ['res_id', 'event_type'], ['__count'])}
        for cta in self:
            cta.view_count = counts.get((cta.id, 'cta_view'), 0)
            cta.click_count = counts.get((cta.id, 'cta_click'), 0)

    def _mautomate_ab_event_types(self):
        # An impression is a view, a conversion a click.
        return 'cta_view', 'cta_click'

    @api.readonly
    def action_open_events(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(
            self.name, [('res_model', '=', self._name), ('res_id', '=', self.id)])

    @api.readonly
    def mautomate_snippet_fallback(self):
        """ The fallback line's text, link and style: what the website block shows without JavaScript. """
        self.ensure_one()
        line = self._mautomate_fallback_line()
        return line and {'label': line.label, 'url': line.url, 'style': line.style}

    # ------------------------------------------------------------
    # Serving
    # ------------------------------------------------------------

    def _mautomate_fallback_line(self):
        return self.line_ids.filtered(lambda line: line.condition == 'always')[:1]

    def _mautomate_pick_line(self, browser_id=None, partner_id=None):
        """ The first line whose condition holds for the visitor: its browser's events, and its contact's when
        the contact is proven (logged in, or the browser in mautomate.proven.browser); an e-mail typed in a form
        is a claim, which shows nothing of what that contact did elsewhere.

        A visitor known by neither (no Browser ID: tracking refused) is not personalised: it gets the
        fallback. The conditions before the first fallback are checked in one statement.
        """
        self.ensure_one()
        lines = self.line_ids
        checked = self.env['mautomate.cta.line']
        for line in lines:
            if line.condition == 'always':
                break
            checked |= line
        if not checked or not (browser_id or partner_id):
            return self._mautomate_fallback_line()
        self.env['mautomate.event'].flush_model()
        self.env.cr.execute(SQL(
            """
            WITH who AS (
                SELECT COALESCE(%(partner)s::int4, (
                    SELECT proven.partner_id FROM mautomate_proven_browser proven WHERE proven.browser_id = %(browser)s
                )) AS partner_id
            )
            SELECT ARRAY[%(checks)s] FROM who
            """,
            partner=partner_id, browser=browser_id,
            checks=SQL(', ').join(line._mautomate_condition_sql(browser_id) for line in checked)))
        matches = self.env.cr.fetchone()[0]
        for line, match in zip(checked, matches, strict=True):
            if match == (line.condition == 'has'):
                return line
        return self._mautomate_fallback_line()

    def _mautomate_serve(self, browser_id=None, partner_id=None):
        """ What this visitor is shown: (CTA, line, A/B test). A running A/B test of this CTA shows one of its
        variants (another CTA), the same for a browser every time; a decided test shows its winner to all. """
        self.ensure_one()
        cta, test = self._mautomate_ab_serve(browser_id)
        return cta, cta._mautomate_pick_line(browser_id, partner_id), test

    def _mautomate_token(self, line, test, browser_id):
        """ Signed (CTA, line, A/B test) shown to `browser_id`: a click sends it back. """
        return self._mautomate_sign((self.id, line.id, test.id), browser_id)

    @api.model
    def _mautomate_read_token(self, token, browser_id):
        """ (CTA, line, A/B test) of a token signed for `browser_id`, or None when it was not. """
        ids = self._mautomate_unsign(token, browser_id, 3)
        if not ids:
            return None
        cta_id, line_id, test_id = ids
        line = self.env['mautomate.cta.line'].browse(line_id).exists()
        return self.browse(cta_id), line, self.env['mautomate.ab.test'].browse(test_id or [])

    def _mautomate_event_vals(self, event_type, line, test, browser_id, partner_id, url):
        """ Values of a view or click event of `line` (of this CTA), for _ingest. """
        self.ensure_one()
        payload = {'line': line.id}
        if test:
            payload['ab_test'] = test.id
        return {
            'event_type': event_type,
            'source': 'website',
            'name': line.label or self.name,
            'url': url[:MAX_URL_LENGTH] if url else None,
            'anonymous_id': browser_id,
            'partner_id': partner_id,
            'res_model': self._name,
            'res_id': self.id,
            'payload': payload,
        }

