from odoo import api, fields, models


class MautomateAbVariant(models.Model):
    """ One variant of an A/B test: a record of the tested model (variant A: the tested element itself). """
    _name = 'mautomate.ab.variant'
    _description = 'A/B Test Variant'
    _order = 'sequence, id'

    test_id = fields.Many2one('mautomate.ab.test', 'A/B Test', required=True, ondelete='cascade', index=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(required=True, help="A, B, C...: given in order when left empty.")
    res_model = fields.Char(related='test_id.res_model', store=True)
    res_id = fields.Many2oneReference('Element', model_field='res_model', required=True)
    record_name = fields.Char('Element Name', compute='_compute_record_name')
    views = fields.Integer(compute='_compute_statistics', help="Browsers this variant was shown to.")
    conversions = fields.Integer(compute='_compute_statistics', help="Browsers that converted: clicked the call to action, "
                                                                    "sent the form, or sent the pop-up's form from the pop-up.")
    rate = fields.Float('Conversion Rate', compute='_compute_statistics', digits=(16, 4))
    ci_low = fields.Float('95% CI Low', compute='_compute_statistics', digits=(16, 4))
    ci_high = fields.Float('95% CI High', compute='_compute_statistics', digits=(16, 4))
    p_value = fields.Float('p-value vs A', compute='_compute_statistics', digits=(16, 4),
                          help="Two-sided two-proportion z-test against the first variant (the control).")
    # No p-value before both this variant and the control were shown: a 0 would read as significant.
    has_p_value = fields.Boolean('p-value Known', compute='_compute_statistics')
    is_control = fields.Boolean('Control', compute='_compute_statistics')
    is_winner = fields.Boolean(compute='_compute_statistics')

    _sql_constraints = [
        ('element_unique', 'UNIQUE(test_id, res_id)', "A test shows each element once."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        variants = self.browse()
        for vals in vals_list:
            if not vals.get('name'):
                vals = {**vals, 'name': self.env['mautomate.ab.test'].browse(vals['test_id'])._ab_next_variant_name()}
            # One at a time: the next default name sees the variants created before it.
            variants |= super().create([vals])
        variants.test_id._ab_notify_changed()
        return variants

    def unlink(self):
        res_models = set(self.mapped('res_model'))
        result = super().unlink()
        self.env['mautomate.ab.test']._ab_notify_changed(res_models)
        return result

    @api.depends('res_model', 'res_id')
    def _compute_record_name(self):
        for variant in self:
            record = variant.res_model in self.env and self.env[variant.res_model].browse(variant.res_id).exists()
            variant.record_name = record.display_name if record else False

    @api.depends('test_id.state', 'test_id.winner_id')
    def _compute_statistics(self):
        rows = {row['variant']: row for test_rows in self.test_id._ab_statistics().values() for row in test_rows}
        for variant in self:
            row = rows.get(variant._origin, {})
            variant.views = row.get('n', 0)
            variant.conversions = row.get('conversions', 0)
            variant.rate = row.get('rate', 0.0)
            variant.ci_low = row.get('ci_low', 0.0)
            variant.ci_high = row.get('ci_high', 0.0)
            variant.p_value = row.get('p') or 0.0
            variant.has_p_value = row.get('p') is not None
            variant.is_control = variant._origin == variant.test_id.variant_ids.sorted(lambda other: (other.sequence, other.id))[:1]
            variant.is_winner = variant.test_id.winner_id == variant

    @api.readonly
    def action_open_element(self):
        self.ensure_one()
        return self.env[self.res_model].browse(self.res_id)._get_records_action()
