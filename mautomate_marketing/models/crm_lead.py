import random
from ast import literal_eval
from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.osv import expression

from .mautomate_scoring import GRADES, STAGES

# Lead fields whose change moves its score, fit or stage (its person, or a CRM fact).
SCORING_FIELDS = {'partner_id', 'email_from', 'type', 'stage_id', 'active', 'probability'}


class CrmLead(models.Model):
    _inherit = 'crm.lead'

    mautomate_event_count = fields.Integer('Events', compute='_compute_mautomate_event_count')
    # Scores are written in SQL by mautomate.scoring: the lead's person's (see _update_leads).
    mautomate_score = fields.Float('Engagement Score', readonly=True, digits=(16, 0), copy=False,
                                   help="Points of the person's behaviour (score ledger), halved every half-life.")
    mautomate_fit_score = fields.Integer('Fit Score', readonly=True, copy=False,
                                         help="The fit score of the lead's contact (or the best of the contacts with its e-mail).")
    mautomate_grade = fields.Selection(GRADES, 'Grade', readonly=True, index=True, copy=False,
                                       help="Fit (A best to D) and engagement (1 most engaged to 4).")
    mautomate_stage = fields.Selection(STAGES, 'Lifecycle Stage', readonly=True, index=True, copy=False)
    mautomate_handoff_date = fields.Datetime('Handed to Sales', readonly=True, copy=False,
                                             help="When this lead reached the marketing-qualified threshold and was given to sales.")
    mautomate_score_why = fields.Html('Why This Score', compute='_compute_mautomate_score_why', sanitize=False)

    def init(self):
        result = super().init()
        # A contact's leads by e-mail (each scoring refresh): an equality lookup, which Odoo's trigram index answers
        # in milliseconds a contact, as its e-mail shares most trigrams with every other.
        tools.create_index(self.env.cr, 'mautomate_crm_lead_email_normalized_idx', self._table, ['email_normalized'],
                           where='email_normalized IS NOT NULL')
        return result

    def _compute_mautomate_event_count(self):
        # Counted in two disjoint parts: the contacts' events from their index alone (a contact may
        # have many), then the lead's and its visitors' events of no such contact.
        Event = self.env['mautomate.event']
        people = self._mautomate_timeline_people()
        for lead in self:
            partner_ids, others = people[lead]
            count = 0
            if lead._origin.id and partner_ids:
                count += Event.search_count([('partner_id', 'in', partner_ids)])
            if lead._origin.id and others:
                count += Event.search_count(expression.AND([
                    expression.OR(others), ['|', ('partner_id', '=', False), ('partner_id', 'not in', partner_ids)]]))
            lead.mautomate_event_count = count

    def _mautomate_timeline_domain(self):
        """ The lead's own events, its contact's, those of contacts with its e-mail, and its visitors'. """
        self.ensure_one()
        partner_ids, others = self._mautomate_timeline_people()[self]
        domains = [[('partner_id', 'in', partner_ids)]] if partner_ids else []
        return expression.OR(domains + others) if domains or others else expression.FALSE_DOMAIN

    def _mautomate_timeline_people(self):
        """ {lead: (ids of its contacts, [domains of its own and its visitors' events])}.

        The contacts, the lead's and those with its e-mail, are found first in one indexed search,
        so that the log is read through its indexes only (a join on the contact's e-mail scans it whole).
        """
        emails = {email for email in self.mapped('email_normalized') if email}
        partner_ids_by_email = defaultdict(set)
        if emails:
            # Like a domain on partner_id.email_normalized: archived contacts too, within the user's record rules.
            partners = self.env['res.partner'].with_context(active_test=False).search_fetch(
                [('email_normalized', 'in', list(emails))], ['email_normalized'])
            for partner in partners:
                partner_ids_by_email[partner.email_normalized].add(partner.id)
        people = {}
        for lead in self:
            partner_ids = set(lead.partner_id.ids) | partner_ids_by_email[lead.email_normalized]
            others = [[('lead_id', '=', lead._origin.id)]] if lead._origin.id else []
            if lead.visitor_ids:
                others.append([('visitor_id', 'in', lead.visitor_ids.ids)])
            people[lead] = (sorted(partner_ids), others)
        return people

    @api.readonly
    def action_mautomate_timeline(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.display_name, self._mautomate_timeline_domain())

    @api.readonly
    def mautomate_get_timeline_data(self, event_types=None, limit=None):
        """ The Timeline tab: chart, type counts and the latest events by day and visit. """
        self.ensure_one()
        return self.env['mautomate.event']._get_timeline_data(self._mautomate_timeline_domain(), event_types, limit)

    # A website form links a visitor's lead to an existing contact: the lead keeps its answers,
    # the contact its values (only its empty fields are filled).
    def _get_partner_email_update(self, force_void=True):
        if self.env.context.get('mautomate_keep_partner_fields') and self.partner_id.email:
            return False
        return super()._get_partner_email_update(force_void=force_void)

    def _get_partner_phone_update(self, force_void=True):
        if self.env.context.get('mautomate_keep_partner_fields') and self.partner_id.phone:
            return False
        return super()._get_partner_phone_update(force_void=force_void)

    # ------------------------------------------------------------
    # Scoring
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        self.env['mautomate.scoring']._enqueue_refresh(leads.partner_id.ids, leads.ids)
        return leads

    def write(self, vals):
        before = self.partner_id
        trigger_snapshot = self.env['mautomate.flow.trigger.scan']._snapshot(self._name, self.ids, vals)
        result = super().write(vals)
        self.env['mautomate.flow.trigger.scan']._enroll_changes(trigger_snapshot)
        if SCORING_FIELDS & set(vals):
            self.env['mautomate.scoring']._enqueue_refresh((before | self.partner_id).ids, self.ids)
        return result

    @api.depends('mautomate_score', 'mautomate_fit_score', 'partner_id', 'email_normalized')
    def _compute_mautomate_score_why(self):
        Scoring = self.env['mautomate.scoring']
        people = self._mautomate_timeline_people()
        for lead in self:
            lead.mautomate_score_why = Scoring._render_why(lead, people[lead][0], lead._origin.ids)

    @api.readonly
    def action_mautomate_score_entries(self):
        self.ensure_one()
        partner_ids = self._mautomate_timeline_people()[self][0]
        domain = expression.OR([[('lead_id', '=', self.id)], [('partner_id', 'in', partner_ids)]])
        return self.env['mautomate.scoring']._action_ledger(self.display_name, domain)

    def _get_message_create_valid_field_names(self):
        # The lead messages tracking writes are marked: erasure removes them, never a salesperson's.
        return super()._get_message_create_valid_field_names() | {'mautomate_tracking'}

    def _mautomate_hand_off(self):
        """ Give marketing-qualified leads to sales, once each: crm's rule-based assignment gives an unassigned
        lead its team and salesperson, who gets a "Hot lead" activity with the three strongest reasons (the
        team's leader when no member took it); the chatter says so. """
        Scoring = self.env['mautomate.scoring']
        leads = self.sudo().filtered(lambda lead: not lead.mautomate_handoff_date and lead.active)
        leads.mautomate_handoff_date = fields.Datetime.now()
        leads.filtered(lambda lead: not lead.user_id)._mautomate_assign_to_sales()
        for lead in leads:
            reasons = Scoring._get_reasons(lead._mautomate_timeline_people()[lead][0], lead.ids, limit=3)
            note = Markup('<p>%s</p><ul>%s</ul>') % (
                self.env._("Grade %(grade)s, engagement %(score)s. Strongest reasons:",
                           grade=lead.mautomate_grade or '-', score=round(lead.mautomate_score)),
                Markup().join(Markup('<li>%s: %+d</li>') % (reason['name'], reason['points']) for reason in reasons))
            user = lead.user_id or lead.team_id.user_id
            if user:
                lead.activity_schedule('mautomate_marketing.mail_activity_type_hot_lead', user_id=user.id, note=note,
                                       summary=self.env._("Hot lead: %s", lead.name))
            who = user.name or lead.team_id.name or self.env._("sales")
            # Markup's % escapes the names.
            lead.message_post(body=Markup('<p>%s</p>') % self.env._("Marketing qualified: handed to %(who)s.", who=who) + note,
                              subtype_xmlid='mail.mt_note', mautomate_tracking=True)

    def _mautomate_assign_to_sales(self):
        """ crm's rule-based assignment (Settings: Rule-Based Assignment) of these leads, at once: a lead without
        team gets one (crm.team._allocate_leads), then a lead without salesperson gets its team's member
        (crm.team._assign_and_convert_leads, without the conversion: a qualified lead is still sales' to qualify).
        With the setting off, or when no rule takes a lead, it stays as crm leaves it: in its team, if any, unassigned. """
        if not self.env['ir.config_parameter'].sudo().get_param('crm.lead.auto.assignment'):
            return
        self._mautomate_allocate_teams()
        self.filtered(lambda lead: lead.team_id and not lead.user_id)._mautomate_assign_salespeople()

    def _mautomate_allocate_teams(self):
        """ crm.team._allocate_leads for these leads alone, in this transaction (crm's takes every unassigned lead
        of the week and commits): each lead with neither team nor salesperson goes to one of the teams taking
        automatic assignment, with capacity, whose assignment domain matches it, drawn at random weighted by capacity. """
        Lead = self.env['crm.lead'].sudo()
        leads = self.sudo().filtered(lambda lead: not lead.team_id and not lead.user_id)
        teams = self.env['crm.team'].sudo().search(['&', '|', ('use_leads', '=', True), ('use_opportunities', '=', True),
                                                    ('assignment_optout', '=', False)])
        candidates = {team: leads.filtered_domain(literal_eval(team.assignment_domain or '[]'))
                      for team in teams if team.assignment_max} if leads else {}
        population = [team for team, team_leads in candidates.items() if team_leads]
        weights = [team.assignment_max for team in population]
        by_team, done = defaultdict(lambda: Lead), Lead
        while population:
            team = random.choices(population, weights=weights, k=1)[0]
            remaining = candidates[team] - done
            if not remaining:
                index = population.index(team)
                population.pop(index)
                weights.pop(index)
                continue
            by_team[team] |= remaining[0]
            done |= remaining[0]
        for team, team_leads in by_team.items():
            team_leads._handle_salesmen_assignment(team_id=team.id)

    def _mautomate_assign_salespeople(self):
        """ crm.team._assign_and_convert_leads for these leads alone, in this transaction and without converting
        them: per team, the leads (most probable first) go in turn to the members taking automatic assignment
        whose assignment domain matches them, within each one's quota of the day (crm's capacity: its average
        leads a month / 30, less the leads it got in the last 24 hours). """
        for team, team_leads in self.sudo().grouped('team_id').items():
            quota = {member: member._get_assignment_quota() for member in team.crm_team_member_ids}
            members = sorted((member for member in team.crm_team_member_ids
                              if not member.assignment_optout and quota[member] > 0), key=quota.get, reverse=True)
            matching = {member: team_leads.filtered_domain(literal_eval(member.assignment_domain or '[]'))
                        for member in members}
            by_user = defaultdict(lambda: self.env['crm.lead'].sudo())
            for lead in team_leads.sorted(lambda lead: (-lead.probability, lead.id)):
                member = next((member for member in members if lead in matching[member]), None)
                if not member:
                    continue
                by_user[member.user_id] |= lead
                members.remove(member)
                quota[member] -= 1
                if quota[member] > 0:
                    members.append(member)
            for user, user_leads in by_user.items():
                user_leads._handle_salesmen_assignment(user_ids=user.ids, team_id=team.id)

    # Predictive probability (mautomate.predictive.model): learnt from won and lost leads, written in SQL batches.
    mautomate_probability = fields.Float(
        'Predicted Probability (%)', readonly=True, copy=False, digits=(16, 2), aggregator='avg',
        help="Learnt from the leads already won and lost: their behaviour in the event log (visits, forms, e-mails, "
             "recency) and fit (country, company, phone, job position). Retrained weekly.")

    def _mautomate_predict_probability(self):
        """ Predict mautomate_probability of these leads with the active training (set-based; none before the
        first training). """
        return self.env['mautomate.predictive.model']._predict_leads(self.ids)

    def _pls_get_lead_pls_values(self, domain=None):
        """ With mautomate_pls_stage_id in the context, Odoo's naive Bayes sees every lead in that stage: the
        predictive training measures Odoo's AUC on closed leads without their won stage giving the answer away. """
        values = super()._pls_get_lead_pls_values(domain=domain or [])
        stage_id = self.env.context.get('mautomate_pls_stage_id')
        if stage_id:
            for lead_values in values.values():
                lead_values['values'] = [
                    ('stage_id', stage_id), *((field, value) for field, value in lead_values['values'] if field != 'stage_id')]
        return values
