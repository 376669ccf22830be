from odoo import api, fields, models, tools


class MautomateScoreEntry(models.Model):
    """ The ledger: one row per award of a behaviour rule, so that every engagement score adds up line by line. """
    _name = 'mautomate.score.entry'
    _description = 'Score Ledger Entry'
    _order = 'date DESC, id DESC'
    _rec_name = 'rule_id'
    # Written in SQL by the scoring engine, never by a user: no author or write date to keep.
    _log_access = False

    # Not indexed alone: the unique (rule_id, event_id) index serves lookups by rule.
    rule_id = fields.Many2one('mautomate.score.rule', readonly=True, ondelete='cascade')
    # Events may leave the log (retention); the award and its date stay.
    event_id = fields.Many2one('mautomate.event', readonly=True, ondelete='set null', index='btree_not_null')
    partner_id = fields.Many2one('res.partner', 'Contact', readonly=True, ondelete='cascade')
    lead_id = fields.Many2one('crm.lead', readonly=True, ondelete='cascade', index='btree_not_null')
    points = fields.Integer(readonly=True)
    date = fields.Datetime(readonly=True, required=True, default=fields.Datetime.now,
                           help="When the scoring event happened: the decay of its points counts from then.")
    event_type = fields.Selection(related='event_id.event_type')
    event_name = fields.Char('Event Title', related='event_id.name')
    event_url = fields.Char('Event URL', related='event_id.url')

    def init(self):
        # One award per rule and event; caps and scores read a person's awards by (contact, rule, date).
        tools.create_unique_index(self.env.cr, 'mautomate_score_entry_rule_event_uniq', self._table, ['rule_id', 'event_id'])
        tools.create_index(self.env.cr, 'mautomate_score_entry_partner_idx', self._table,
                           ['partner_id', 'rule_id', 'date'], where='partner_id IS NOT NULL')

    @api.depends('rule_id', 'points')
    def _compute_display_name(self):
        for entry in self:
            entry.display_name = f"{entry.rule_id.name or self.env._('Points')} ({entry.points:+d})"
