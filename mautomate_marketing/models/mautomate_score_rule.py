from ast import literal_eval

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.osv import expression

from ..tools.url_patterns import glob_to_like
from .mautomate_event import EVENT_TYPES

# Rule fields that decide which events score and how much: changing one rebuilds the rule's ledger.
BEHAVIOUR_DEFINITION = {'rule_type', 'event_type', 'url_pattern', 'name_pattern', 'campaign_id', 'min_value',
                        'points', 'max_per_contact', 'max_per_period', 'period_days', 'active'}



class MautomateScoreRule(models.Model):
    """ What a person's behaviour (events) or profile (fit) is worth in points. """
    _name = 'mautomate.score.rule'
    _inherit = ['mail.thread']
    _description = 'Score Rule'
    _order = 'sequence, id'

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(default=10)
    rule_type = fields.Selection([('behaviour', 'Behaviour'), ('fit', 'Fit')], 'Type', required=True, default='behaviour',
                                 tracking=True, help="Behaviour: points for each matching event (engagement score).\n"
                                                     "Fit: points while the contact matches a domain (fit score).")
    points = fields.Integer(required=True, default=10, tracking=True, help="May be negative, e.g. -10 for a visit to the jobs page.")
    # behaviour
    event_type = fields.Selection(EVENT_TYPES, tracking=True, help="The kind of event that scores; empty means any kind.")
    url_pattern = fields.Char(
        'URL Pattern',
        tracking=True, help="'*' matches any text. '/pricing*' matches the page's path and query on any site; a pattern with a "
                            "scheme and host, such as 'https://shop.example.com/*', matches the whole URL. Case-insensitive.")
    name_pattern = fields.Char(
        'Event Name Pattern',
        tracking=True, help="Matches the event's title: page title, CTA label, form, custom API event name ('Video watched*').")
    campaign_id = fields.Many2one('utm.campaign', 'UTM Campaign', ondelete='cascade',
                                  tracking=True, help="Only events that came from this campaign score.")
    min_value = fields.Float('Minimum Value', tracking=True, help="Only events whose value is at least this score (0: any value).")
    max_per_contact = fields.Integer(
        'Max per Contact', default=0, tracking=True, help="How many times a contact can get these points in all. 0: no limit.")
    max_per_period = fields.Integer(
        'Max per Period', default=0, tracking=True, help="How many times a contact can get these points per period. 0: no limit.")
    period_days = fields.Integer('Period (days)', default=0, tracking=True)
    # fit
    domain = fields.Char(default='[]', tracking=True, help="Contacts matching this domain get the points, while they match it.")
    # ledger
    entry_ids = fields.One2many('mautomate.score.entry', 'rule_id', 'Ledger')
    entry_count = fields.Integer('Awards', compute='_compute_entry_stats')
    entry_points = fields.Integer('Points Awarded', compute='_compute_entry_stats')
    description = fields.Text(translate=True)
    needs_rebuild = fields.Boolean(readonly=True, copy=False, help="Changed since its awards were made: the recompute awards it anew.")
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="Only events of this company score (and events of no company). Empty: shared by all companies.")


    @api.depends('entry_ids')
    def _compute_entry_stats(self):
        stats = {rule: (count, points) for rule, count, points in self.env['mautomate.score.entry']._read_group(
            [('rule_id', 'in', self.ids)], ['rule_id'], ['__count', 'points:sum'])}
        for rule in self:
            rule.entry_count, rule.entry_points = stats.get(rule._origin, (0, 0))

    @api.constrains('rule_type', 'event_type', 'url_pattern', 'name_pattern', 'campaign_id', 'min_value')
    def _check_behaviour(self):
        for rule in self.filtered(lambda rule: rule.rule_type == 'behaviour'):
            patterns = [rule.url_pattern, rule.name_pattern]
            if any(pattern is not False and not pattern.strip() for pattern in patterns):
                raise ValidationError(self.env._("Rule %s: a pattern cannot be blank; leave it empty to match anything.", rule.name))
            if not (rule.event_type or rule.url_pattern or rule.name_pattern or rule.campaign_id):
                raise ValidationError(self.env._(
                    "Rule %s: choose an event type or give a URL pattern, an event name pattern or a campaign, "
                    "or it would score every event.", rule.name))

    @api.constrains('max_per_contact', 'max_per_period', 'period_days')
    def _check_caps(self):
        for rule in self:
            if rule.max_per_contact < 0 or rule.max_per_period < 0 or rule.period_days < 0:
                raise ValidationError(self.env._("Rule %s: caps and periods cannot be negative (0: no limit).", rule.name))
            if bool(rule.max_per_period) != bool(rule.period_days):
                raise ValidationError(self.env._(
                    "Rule %s: a cap per period needs both how many times and the period in days.", rule.name))

    @api.constrains('rule_type', 'domain')
    def _check_domain(self):
        for rule in self.filtered(lambda rule: rule.rule_type == 'fit'):
            try:
                with self.env.cr.savepoint():
                    self.env['res.partner'].search_count(rule._get_fit_domain(), limit=1)
            except Exception as error:  # any parse or field error is the user's to fix
                raise ValidationError(self.env._("Rule %(rule)s: the domain is not valid (%(error)s).",
                                                 rule=rule.name, error=error)) from error

    def _get_fit_domain(self):
        self.ensure_one()
        domain = literal_eval(self.domain or '[]')
        if not isinstance(domain, (list, tuple)):
            raise ValueError(self.env._("a domain is a list of conditions"))
        return expression.normalize_domain(list(domain))

    def _url_like(self):
        """ (LIKE pattern, whether it applies to the whole URL) or (None, False). """
        pattern = (self.url_pattern or '').strip()
        if not pattern:
            return None, False
        return glob_to_like(pattern), '://' in pattern

    # ------------------------------------------------------------
    # CRUD: the ledger follows its rules
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        rules = super().create(vals_list)
        rules._mautomate_rules_changed(rebuild=True)
        return rules

    def write(self, vals):
        result = super().write(vals)
        if BEHAVIOUR_DEFINITION & set(vals) or 'domain' in vals:
            self._mautomate_rules_changed(rebuild=bool(BEHAVIOUR_DEFINITION & set(vals)))
        return result

    def unlink(self):
        # Their awards go with them (cascade); the recompute then lowers their contacts' scores.
        result = super().unlink()
        self.env.registry.clear_cache()
        self.env['mautomate.scoring']._trigger_recompute()
        return result

    def _mautomate_rules_changed(self, rebuild):
        """ Scores follow rule changes: the recompute (woken now) awards changed rules anew over the log. """
        self.env.registry.clear_cache()
        if rebuild:
            self.sudo().needs_rebuild = True
        self.env['mautomate.scoring']._trigger_recompute()

    @api.model
    @tools.ormcache()
    def _get_scoring_event_types(self):
        """ Event types that active behaviour rules score (None: any type). Cached: asked on every ingest. """
        # A rule written in this transaction is read as written, not as the database had it (the cache outlives it).
        self.flush_model(['active', 'rule_type', 'event_type'])
        self.env.cr.execute("SELECT DISTINCT event_type FROM mautomate_score_rule WHERE active AND rule_type = 'behaviour'")
        return frozenset(row[0] for row in self.env.cr.fetchall())

    @api.model
    @tools.ormcache()
    def _get_fit_fields(self):
        """ Contact fields that active fit rules read: writing one refreshes the contact's fit. """
        names = set()
        for rule in self.sudo().search([('rule_type', '=', 'fit')]):
            try:
                domain = rule._get_fit_domain()
            except (ValueError, SyntaxError):
                continue
            names.update(leaf[0].split('.')[0] for leaf in domain if isinstance(leaf, (list, tuple)) and len(leaf) == 3)
        return frozenset(names)

    def action_recompute_scores(self):
        """ From the rule list: award every rule anew and refresh all scores, in the background. """
        self.check_access('write')
        self.env.cr.execute("UPDATE mautomate_score_rule SET needs_rebuild = TRUE")
        self.invalidate_model(['needs_rebuild'])
        self.env['mautomate.scoring']._trigger_recompute()
        return {'type': 'ir.actions.client', 'tag': 'display_notification', 'params': {
            'type': 'info', 'message': self.env._("Scores are being recomputed; they are up to date in a few moments.")}}

    @api.readonly
    def action_open_entries(self):
        self.ensure_one()
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_score_entry_action')
        action['domain'] = [('rule_id', '=', self.id)]
        return action
