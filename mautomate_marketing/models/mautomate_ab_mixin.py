from odoo import api, fields, models


class MautomateAbMixin(models.AbstractModel):
    """ What a website element (a CTA; later a form or a pop-up) needs to be A/B tested: its variants are
    other records of its model, its views and conversions are events about them. """
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

    def _mautomate_ab_current_test(self):
        """ The test deciding what this element shows: running, or won (its winner then shows to all). """
        self.ensure_one()
        return self.env['mautomate.ab.test'].sudo().search(
            [('res_model', '=', self._name), ('res_id', '=', self.id), ('state', 'in', ('running', 'won'))],
            order='id DESC', limit=1)

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

    def action_open_ab_tests(self):
        self.ensure_one()
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_ab_test_action')
        action.update({'domain': [('res_model', '=', self._name), ('res_id', '=', self.id)],
                       'context': {'create': False}})
        return action
