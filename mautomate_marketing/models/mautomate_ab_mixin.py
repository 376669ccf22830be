from odoo import api, fields, models, tools
from odoo.tools import SQL


class MautomateAbMixin(models.AbstractModel):
    """ What a website element (a CTA, a form, a pop-up) needs to be A/B tested: its variants are other records
    of its model, its views and conversions are events about them, carrying the test in payload['ab_test']. """
    _name = 'mautomate.ab.mixin'
    _description = 'A/B Testable Element'

    ab_test_ids = fields.One2many('mautomate.ab.test', 'res_id', 'A/B Tests',
                                  domain=lambda self: [('res_model', '=', self._name)])
    ab_test_count = fields.Integer('A/B Test Count', compute='_compute_ab_test_count')

    @api.depends('ab_test_ids')
    def _compute_ab_test_count(self):
        for record in self:
            record.ab_test_count = len(record.ab_test_ids)

    def _mautomate_ab_event_types(self):
        """ (impression, conversion) event types of this element, e.g. ('cta_view', 'cta_click'). """
        raise NotImplementedError()

    def _mautomate_ab_copy(self, label):
        """ A copy of this element, to become variant `label` of a test of it. """
        self.ensure_one()
        return self.copy({'name': f'{self.display_name} ({label})'} if 'name' in self._fields else {})

    def _mautomate_ab_element_sql(self):
        """ SQL expression, on a row of mautomate_event, of the variant (a record of this model) the event counts for. """
        return SQL('res_id')

    def _mautomate_ab_check_start(self, test):
        """ Raise a UserError when `test` of this element may not start (another test would count the same events). """
        return

    def _mautomate_ab_copies_released(self):
        """ These variants, copies made for an A/B test, belong to no test any more: the test was deleted. """
        return

    def _mautomate_ab_tests_changed(self):
        """ Called when tests of this model were created, started, decided, stopped or deleted. """
        return

    def _mautomate_ab_current_test(self):
        """ The test deciding what this element shows: running, or won (its winner then shows to all). """
        self.ensure_one()
        return self.env['mautomate.ab.test'].sudo().search(
            [('res_model', '=', self._name), ('res_id', '=', self.id), ('state', 'in', ('running', 'won'))],
            order='id DESC', limit=1)

    def _mautomate_ab_running_tests(self):
        """ The running A/B tests of these elements, or showing them as a variant. """
        return self.env['mautomate.ab.variant'].sudo().search(
            [('res_model', '=', self._name), ('res_id', 'in', self.ids), ('test_id.state', '=', 'running')]).test_id

    def _mautomate_ab_serve(self, browser_id):
        """ (element, test) to show to `browser_id`: a running test's variant for this browser, the same every time,
        or a decided test's winner, else this element. The test is returned only when it counts what it shows: it
        runs and tells browsers apart. """
        self.ensure_one()
        test = self._mautomate_ab_current_test()
        if not test:
            return self, test
        variant = test._ab_variant_for(browser_id)
        shown = variant and self.browse(variant.res_id).exists()
        shown = shown if shown and shown._mautomate_ab_servable() else self
        return shown, test if test.state == 'running' and browser_id and variant else test.browse()

    def _mautomate_ab_servable(self):
        """ Whether this variant can be shown (an archived one cannot: the tested element shows instead). """
        return 'active' not in self._fields or self.active

    # ------------------------------------------------------------
    # Tokens: what a browser was shown, signed for it
    # ------------------------------------------------------------

    def _mautomate_sign(self, ids, browser_id):
        """ A token of the ids (this element's and those it names, e.g. the A/B test's; 0 for none) signed for
        `browser_id`: what the browser sends back names what it was shown, and nothing else. """
        message = '.'.join(str(int(record_id or 0)) for record_id in ids)
        return f'{message}.{tools.misc.hmac(self.env(su=True), self._name, (message, browser_id))}'

    @api.model
    def _mautomate_unsign(self, token, browser_id, count):
        """ The `count` ids of a token signed for `browser_id`, or None when it was not. """
        parts = token.split('.') if isinstance(token, str) else []
        if len(parts) != count + 1 or not all(part.isdigit() for part in parts[:count]):
            return None
        message = '.'.join(parts[:count])
        if not tools.consteq(tools.misc.hmac(self.env(su=True), self._name, (message, browser_id)), parts[count]):
            return None
        return [int(part) for part in parts[:count]]

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_new_ab_test(self):
        """ A draft test of this element (variant A) against a copy of it (variant B) to edit. """
        self.ensure_one()
        test = self.env['mautomate.ab.test'].create({
            'name': self.env._("A/B test of %s", self.display_name),
            'res_model': self._name,
            'res_id': self.id,
        })
        test.action_add_variant()
        return test._get_records_action()

    @api.readonly
    def action_open_ab_tests(self):
        self.ensure_one()
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_ab_test_action')
        action.update({'domain': [('res_model', '=', self._name), ('res_id', '=', self.id)],
                       'context': {'create': False}})
        return action
