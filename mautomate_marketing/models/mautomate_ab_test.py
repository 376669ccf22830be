import hashlib
import logging
import math
import string
from collections import defaultdict

from odoo import api, fields, models, modules, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# 95 % confidence: the two-sided normal quantile of the Wilson intervals and the significance level of the winner.
Z_95 = 1.959963984540054
ALPHA = 0.05


class MautomateAbTest(models.Model):
    """ An A/B test of a website element (a CTA, a form, a pop-up: any model of mautomate.ab.mixin): its variants are records
    of that model, each browser always sees the same one, and the one converting best wins.

    The winner rule (see _ab_evaluate): every variant has been seen by at least `min_views` browsers, and the
    variant with the highest conversion rate beats each other variant in a two-sided two-proportion z-test at
    p < 0.05 / (number of variants - 1) (Bonferroni: the chance of a wrong winner stays under 5 %).
    """
    _name = 'mautomate.ab.test'
    _inherit = ['mail.thread']
    _description = 'A/B Test'
    _order = 'id DESC'

    name = fields.Char(required=True, tracking=True)
    res_model = fields.Char('Tested Model', required=True, readonly=True, index=True)
    res_id = fields.Many2oneReference('Tested Element', model_field='res_model', required=True, readonly=True, index=True)
    record_name = fields.Char('Tested Element Name', compute='_compute_record_name')
    state = fields.Selection([
        ('draft', 'Draft'),
        ('running', 'Running'),
        ('won', 'Winner Declared'),
        ('stopped', 'Stopped'),
    ], required=True, default='draft', readonly=True, copy=False, tracking=True)
    variant_ids = fields.One2many('mautomate.ab.variant', 'test_id', 'Variants')
    winner_id = fields.Many2one('mautomate.ab.variant', readonly=True, copy=False, tracking=True)
    min_views = fields.Integer(
        'Minimum Views per Variant', required=True, default=100,
        tracking=True, help="No winner is declared before every variant has been seen by this many browsers.")
    date_start = fields.Datetime('Started', readonly=True, copy=False)
    date_end = fields.Datetime('Ended', readonly=True, copy=False)
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="Empty: shared by all companies.")

    # In Python, not a database CHECK, which would log a marketer's typo as an error.
    @api.constrains('min_views')
    def _check_min_views(self):
        if any(test.min_views <= 0 for test in self):
            raise ValidationError(self.env._("The minimum number of views per variant must be positive."))

    def init(self):
        # The statistics read a test's events; only A/B events carry the key, so only they pay for the index.
        tools.create_index(self.env.cr, 'mautomate_event_ab_test_idx', 'mautomate_event',
                           ["(payload->>'ab_test')", 'event_type'], where="payload ? 'ab_test'")

    @api.depends('res_model', 'res_id')
    def _compute_record_name(self):
        for test in self:
            record = test._ab_subject()
            test.record_name = record.display_name if record else False

    def _ab_subject(self):
        self.ensure_one()
        if self.res_model not in self.env:
            return None
        return self.env[self.res_model].browse(self.res_id).exists()

    @api.model_create_multi
    def create(self, vals_list):
        tests = super().create(vals_list)
        # Variant A is the tested element itself: the control.
        for test in tests.filtered(lambda test: not test.variant_ids):
            self.env['mautomate.ab.variant'].create({'test_id': test.id, 'res_id': test.res_id})
        tests._ab_notify_changed()
        return tests

    def write(self, vals):
        result = super().write(vals)
        if {'state', 'winner_id'} & set(vals):
            self._ab_notify_changed()
        return result

    def unlink(self):
        res_models = set(self.mapped('res_model'))
        copies = [(test.res_model, [variant.res_id for variant in test.variant_ids if variant.res_id != test.res_id])
                  for test in self if test.res_model in self.env]
        result = super().unlink()
        for res_model, res_ids in copies:
            self.env[res_model].browse(res_ids).exists()._mautomate_ab_copies_released()
        self._ab_notify_changed(res_models)
        return result

    def _ab_notify_changed(self, res_models=None):
        for res_model in res_models or set(self.mapped('res_model')):
            if res_model in self.env:
                self.env[res_model]._mautomate_ab_tests_changed()

    # ------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------

    def action_add_variant(self):
        """ A new variant: a copy of the tested element, to be edited. """
        for test in self:
            if test.state != 'draft':
                raise UserError(self.env._("Variants can only be added to a draft test: a running test keeps each browser's variant."))
            subject = test._ab_subject()
            if not subject:
                raise UserError(self.env._("The tested element no longer exists."))
            name = test._ab_next_variant_name()
            self.env['mautomate.ab.variant'].create({'test_id': test.id, 'name': name, 'res_id': subject._mautomate_ab_copy(name).id})
        return True

    def _ab_next_variant_name(self):
        used = set(self.variant_ids.mapped('name'))
        return next(letter for letter in string.ascii_uppercase + string.digits if letter not in used)

    def action_start(self):
        for test in self:
            if test.state != 'draft':
                raise UserError(self.env._("Only a draft test can start."))
            if len(test.variant_ids) < 2:
                raise UserError(self.env._("An A/B test needs at least two variants."))
            if self.search_count([('res_model', '=', test.res_model), ('res_id', '=', test.res_id),
                                  ('state', 'in', ('running', 'won')), ('id', '!=', test.id)]):
                raise UserError(self.env._("%s already has a running or decided test: stop it first.", test.record_name))
            test._ab_subject()._mautomate_ab_check_start(test)
        self.write({'state': 'running', 'date_start': fields.Datetime.now()})
        return True

    def action_stop(self):
        """ Stop without a winner: the tested element shows again to everyone. """
        self.write({'state': 'stopped', 'date_end': fields.Datetime.now()})
        return True

    def action_evaluate(self):
        won = self._ab_evaluate()
        message = (self.env._("A winner is declared.") if won else
                   self.env._("No significant difference yet: the test keeps running."))
        return {'type': 'ir.actions.client', 'tag': 'display_notification', 'params': {
            'type': 'success' if won else 'info', 'message': message, 'next': {'type': 'ir.actions.act_window_close'}}}

    # ------------------------------------------------------------
    # Serving
    # ------------------------------------------------------------

    def _ab_variant_for(self, browser_id):
        """ The variant to show to `browser_id`: the winner once declared, else a fixed one per browser (a hash
        of the test and the Browser ID), else the control (no browser). """
        self.ensure_one()
        if self.state == 'won':
            return self.winner_id
        variants = self.variant_ids.sorted(lambda variant: (variant.sequence, variant.id))
        if not variants or not browser_id:
            return variants[:1]
        return variants[self._ab_bucket(self.id, browser_id, len(variants))]

    @api.model
    def _ab_bucket(self, test_id, browser_id, count):
        """ Which of `count` variants test `test_id` shows `browser_id`: a hash, so no storage and the same on every worker. """
        return int(hashlib.sha256(f'{test_id}:{browser_id}'.encode()).hexdigest()[:15], 16) % count

    # ------------------------------------------------------------
    # Statistics
    # ------------------------------------------------------------

    @api.model
    def _ab_wilson_interval(self, conversions, n, z=Z_95):
        """ Wilson score interval of the rate conversions / n (95 % by default); (0, 0) without views. """
        if not n:
            return 0.0, 0.0
        rate = conversions / n
        denominator = 1 + z * z / n
        center = (rate + z * z / (2 * n)) / denominator
        half_width = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
        return max(0.0, center - half_width), min(1.0, center + half_width)

    @api.model
    def _ab_z_test(self, conversions_a, n_a, conversions_b, n_b):
        """ Two-proportion z-test (pooled): z of rate b - rate a and its two-sided p-value; (None, None) without views. """
        if not n_a or not n_b:
            return None, None
        pooled = (conversions_a + conversions_b) / (n_a + n_b)
        standard_error = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
        if not standard_error:
            return 0.0, 1.0
        z = (conversions_b / n_b - conversions_a / n_a) / standard_error
        return z, math.erfc(abs(z) / math.sqrt(2))

    def _ab_counts(self):
        """ {test id: {variant's element id: (browsers that saw it, browsers that converted)}}, in one GROUP BY
        per tested model. A browser counts once: the test's unit is the browser, as its split is. Only the website's
        events count: an API event's payload is another system's text, and no browser was shown a variant. """
        counts = defaultdict(dict)
        self.env['mautomate.event'].flush_model()
        by_model = defaultdict(lambda: self.browse())
        for test in self:
            by_model[test.res_model] |= test
        for res_model, tests in by_model.items():
            if res_model not in self.env:
                continue
            Element = self.env[res_model]
            view_type, conversion_type = Element._mautomate_ab_event_types()
            self.env.cr.execute(SQL(
                """
                SELECT (payload->>'ab_test')::int4, %(element)s,
                       COUNT(DISTINCT anonymous_id) FILTER (WHERE event_type = %(view)s),
                       COUNT(DISTINCT anonymous_id) FILTER (WHERE event_type = %(conversion)s)
                  FROM mautomate_event
                 WHERE payload ? 'ab_test' AND payload->>'ab_test' = ANY(%(tests)s)
                   AND jsonb_typeof(payload->'ab_test') = 'number'
                   AND event_type IN (%(view)s, %(conversion)s) AND source <> 'api'
              GROUP BY 1, 2
                """, element=Element._mautomate_ab_element_sql(), view=view_type, conversion=conversion_type,
                tests=[str(test_id) for test_id in tests.ids]))
            for test_id, res_id, views, conversions in self.env.cr.fetchall():
                counts[test_id][res_id] = (views, conversions)
        return counts

    def _ab_statistics(self):
        """ Per test, per variant (in order): n (browsers shown it), conversions, rate, the rate's 95 % Wilson
        interval (ci_low, ci_high) and the z-test against the control, the first variant (z, p; None for it). """
        counts = self._ab_counts()
        statistics = {}
        for test in self:
            rows = []
            for variant in test.variant_ids.sorted(lambda variant: (variant.sequence, variant.id)):
                n, conversions = counts[test.id].get(variant.res_id, (0, 0))
                ci_low, ci_high = self._ab_wilson_interval(conversions, n)
                z, p = (None, None) if not rows else self._ab_z_test(rows[0]['conversions'], rows[0]['n'], conversions, n)
                rows.append({'variant': variant, 'n': n, 'conversions': conversions, 'rate': conversions / n if n else 0.0,
                             'ci_low': ci_low, 'ci_high': ci_high, 'z': z, 'p': p})
            statistics[test.id] = rows
        return statistics

    def _ab_evaluate(self):
        """ Declare the winner of the running tests that have one (see the class docstring); returns those. """
        running = self.filtered(lambda test: test.state == 'running')
        won = self.browse()
        for test_id, rows in running._ab_statistics().items():
            if len(rows) < 2 or any(row['n'] < self.browse(test_id).min_views for row in rows):
                continue
            leader = max(rows, key=lambda row: row['rate'])
            threshold = ALPHA / (len(rows) - 1)
            if all(self._ab_z_test(row['conversions'], row['n'], leader['conversions'], leader['n'])[1] < threshold
                   for row in rows if row is not leader):
                test = self.browse(test_id)
                test.write({'state': 'won', 'winner_id': leader['variant'].id, 'date_end': fields.Datetime.now()})
                won |= test
        return won

    @api.model
    def _cron_evaluate(self, batch_size=50):
        """ Declare the winners of running tests, a committed batch at a time. """
        auto_commit = not modules.module.current_test
        done = won = last_id = 0
        self.flush_model(['state'])
        while True:
            self.env.cr.execute(SQL("""
                SELECT id FROM mautomate_ab_test WHERE state = 'running' AND id > %s
              ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            """, last_id, batch_size))
            ids = [row[0] for row in self.env.cr.fetchall()]
            if not ids:
                break
            won += len(self.browse(ids)._ab_evaluate())
            done += len(ids)
            last_id = ids[-1]
            if auto_commit:
                # Each batch's winners are kept even if a later batch fails.
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env['ir.cron']._notify_progress(done=done, remaining=0)
        _logger.info("Evaluated %s A/B tests, %s winners declared", done, won)
        return won
