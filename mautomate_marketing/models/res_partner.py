from odoo import api, fields, models, tools
from odoo.exceptions import AccessError
from odoo.tools import SQL

from .mautomate_erased_browser import BROWSER_HASH_SQL
from .mautomate_scoring import GRADES, STAGES

EVENT_READERS = 'sales_team.group_sale_salesman,mautomate_marketing.group_mautomate_user'


class ResPartner(models.Model):
    _inherit = 'res.partner'

    # Contacts are found by e-mail on every form, API call and lead timeline (crm indexes its leads' the same way).
    email_normalized = fields.Char(index='btree_not_null')  # inherited via mail.thread.blacklist
    mautomate_no_tracking = fields.Boolean(
        'Do Not Track', groups='base.group_user',
        help="This contact asked not to be tracked: no page view, e-mail or API event is logged for it.")
    mautomate_erased_on = fields.Datetime(
        'Tracking Erased On', readonly=True, copy=False, groups='base.group_user',
        help="This contact's tracking data was erased: it is not tracked (Do Not Track) until it gives its consent "
             "again on a form.")
    # Only those who may read the event log (sales, marketing automation) see a contact's events.
    mautomate_event_ids = fields.One2many('mautomate.event', 'partner_id', 'Marketing Events', groups=EVENT_READERS)
    mautomate_event_count = fields.Integer('Events', compute='_compute_mautomate_event_count', groups=EVENT_READERS)
    # Scores are written in SQL by mautomate.scoring, on new events and by the nightly recompute.
    # Internal users only: a portal user does not read its own grade.
    mautomate_score = fields.Float('Engagement Score', readonly=True, digits=(16, 0), copy=False, groups='base.group_user',
                                   help="Points of the person's behaviour (score ledger), halved every half-life.")
    mautomate_fit_score = fields.Integer('Fit Score', readonly=True, copy=False, groups='base.group_user',
                                         help="Points of the fit rules this contact matches.")
    mautomate_grade = fields.Selection(GRADES, 'Grade', readonly=True, index=True, copy=False, groups='base.group_user',
                                       help="Fit (A best to D) and engagement (1 most engaged to 4).")
    mautomate_stage = fields.Selection(STAGES, 'Lifecycle Stage', readonly=True, index=True, copy=False,
                                       groups='base.group_user')
    mautomate_score_why = fields.Html('Why This Score', compute='_compute_mautomate_score_why', groups=EVENT_READERS,
                                      sanitize=False)

    def _compute_mautomate_event_count(self):
        counts = dict(self.env['mautomate.event']._read_group([('partner_id', 'in', self.ids)], ['partner_id'], ['__count']))
        for partner in self:
            partner.mautomate_event_count = counts.get(partner._origin, 0)

    @api.readonly
    def action_mautomate_timeline(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.display_name, [('partner_id', '=', self.id)])

    # ------------------------------------------------------------
    # Scoring
    # ------------------------------------------------------------

    @api.depends('mautomate_score', 'mautomate_fit_score')
    def _compute_mautomate_score_why(self):
        Scoring = self.env['mautomate.scoring']
        for partner in self:
            partner.mautomate_score_why = Scoring._render_why(partner, partner._origin.ids, [])

    @api.readonly
    def action_mautomate_score_entries(self):
        self.ensure_one()
        return self.env['mautomate.scoring']._action_ledger(self.display_name, [('partner_id', '=', self.id)])

    @api.model_create_multi
    def create(self, vals_list):
        partners = super().create(vals_list)
        if self.env['mautomate.score.rule']._get_fit_fields():
            self.env['mautomate.scoring']._enqueue_refresh(partners.ids, fit=True)
        return partners

    def write(self, vals):
        trigger_snapshot = self.env['mautomate.flow.trigger.scan']._snapshot(self._name, self.ids, vals)
        result = super().write(vals)
        self.env['mautomate.flow.trigger.scan']._enroll_changes(trigger_snapshot)
        # Fit follows the contact's fields: only fields that fit rules read start a refresh.
        if self.ids and set(vals) & self.env['mautomate.score.rule']._get_fit_fields():
            self.env['mautomate.scoring']._enqueue_refresh(self.ids, fit=True)
        return result

    def _mautomate_leads_for_handoff(self):
        """ The open leads to hand over to sales for these contacts: each one's open leads not yet
        handed over; for a contact without any open lead, a new one. """
        Lead = self.env['crm.lead'].sudo()
        leads = Lead.search([('partner_id', 'in', self.ids), '|', ('stage_id', '=', False), ('stage_id.is_won', '=', False)])
        # Leads are a CRM setting (employees get the group): else sales works on opportunities only.
        lead_type = 'lead' if self.env.ref('crm.group_use_lead') in self.env.ref('base.group_user').sudo().implied_ids else 'opportunity'
        new_vals = []
        for partner in self - leads.partner_id:
            new_vals.append({
                'name': self.env._("%s (marketing qualified)", partner.display_name),
                'partner_id': partner.id,
                'type': lead_type,
                'user_id': False,  # the hand-off assigns it (not to whoever's request crossed the threshold)
                'description': self.env._("Created when the contact became marketing qualified."),
            })
        if new_vals:
            leads |= Lead.create(new_vals)
        return leads.filtered(lambda lead: not lead.mautomate_handoff_date)

    @api.readonly
    def mautomate_get_timeline_data(self, event_types=None, limit=None):
        """ The Timeline tab: chart, type counts and the latest events by day and visit. """
        self.ensure_one()
        return self.env['mautomate.event']._get_timeline_data([('partner_id', '=', self.id)], event_types, limit)

    def action_mautomate_erase_tracking(self):
        """ Right to erasure: see _mautomate_erase_tracking. """
        if not self.env.user.has_group('mautomate_marketing.group_mautomate_manager'):
            raise AccessError(self.env._("Only Marketing Automation managers can erase tracking data."))
        self._mautomate_erase_tracking()
        for partner in self:
            partner.sudo().message_post(body=self.env._("Tracking data erased by %s.", self.env.user.name))

    def _mautomate_erase_tracking(self):
        """ Erase what tracking knows of these contacts, set-based: their flows stop (pending steps skipped, their
        queued flow e-mails cancelled); their consents stop counting (anonymised after the proof period); their
        events, score ledger and queue rows, website visitors and the lead messages tracking wrote are deleted;
        they are not tracked (nor their browsers, kept as hashes) until they opt in again on a form. """
        partners = self.sudo()
        if not partners:
            return
        now = fields.Datetime.now()
        emails = [email for email in partners.mapped('email_normalized') if email]
        leads = self.env['crm.lead'].sudo().with_context(active_test=False).search(
            ['|', ('partner_id', 'in', partners.ids), ('email_normalized', 'in', emails)])
        # Flows first: nothing of theirs goes out after this, from the engine or the mail queue.
        Trace = self.env['mautomate.flow.trace'].sudo()
        participants = self.env['mautomate.flow.participant'].sudo().search(
            ['|', ('partner_id', 'in', partners.ids), ('lead_id', 'in', leads.ids)])
        participants._finish('stopped', 'erased')
        queued = Trace.search([('participant_id', 'in', participants.ids), ('mail_mail_id.state', '=', 'outgoing')]).mail_mail_id
        queued.mailing_trace_ids.set_canceled()
        queued.cancel()
        self.env['mautomate.consent'].sudo().search(
            ['|', ('partner_id', 'in', partners.ids), ('email', 'in', emails)])._mark_erased()
        visitor_ids = []
        for partner in partners:
            visitor_ids += partner._mautomate_erase_events(leads.filtered(
                lambda lead, partner=partner: lead.partner_id == partner or (
                    lead.email_normalized and lead.email_normalized == partner.email_normalized)))
        self.env['website.visitor'].sudo().browse(visitor_ids).exists().unlink()
        self.env['mail.message'].sudo().search([('mautomate_tracking', '=', True), '|',
            '&', ('model', '=', 'crm.lead'), ('res_id', 'in', leads.ids),
            '&', ('model', '=', 'res.partner'), ('res_id', 'in', partners.ids)]).unlink()
        partners.write({'mautomate_no_tracking': True, 'mautomate_erased_on': now})
        # Their scores, grades and stages follow the emptied ledger.
        self.env['mautomate.scoring']._enqueue_refresh(partners.ids, leads.ids)

    def _mautomate_erase_events(self, leads):
        """ Delete the events, score ledger and queue rows of this contact and of its leads, browsers and
        visitors, in SQL (a contact may have many events); its browsers are kept as hashes, not to be tracked
        again. Returns the ids of its website visitors (no other contact's). """
        self.ensure_one()
        self.env.flush_all()
        self.env.cr.execute(SQL("""
            SELECT id FROM website_visitor WHERE partner_id = %(partner)s
             UNION
            SELECT v.id FROM website_visitor v
             WHERE v.partner_id IS NULL
               AND (v.id = ANY(ARRAY(SELECT DISTINCT visitor_id FROM mautomate_event
                                      WHERE partner_id = %(partner)s AND visitor_id IS NOT NULL))
                    OR v.id = ANY(%(lead_visitors)s))
        """, partner=self.id, lead_visitors=leads.visitor_ids.ids))
        visitor_ids = [row[0] for row in self.env.cr.fetchall()]
        # Its browsers: those proven as it, the cookie ids on its events and on its visitors' and leads' anonymous ones.
        self.env.cr.execute(SQL("""
            SELECT browser_id FROM mautomate_proven_browser WHERE partner_id = %(partner)s
             UNION
            SELECT anonymous_id FROM mautomate_event
             WHERE anonymous_id IS NOT NULL
               AND (partner_id = %(partner)s
                    OR (partner_id IS NULL AND (visitor_id = ANY(%(visitors)s) OR lead_id = ANY(%(leads)s))))
        """, partner=self.id, visitors=visitor_ids, leads=leads.ids))
        browser_ids = [row[0] for row in self.env.cr.fetchall()]
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_erased_browser (browser_hash, partner_id)
            SELECT %(hash)s, %(partner)s FROM unnest(%(browsers)s::varchar[]) AS browser(anonymous_id)
                ON CONFLICT (browser_hash) DO NOTHING;
            DELETE FROM mautomate_proven_browser WHERE partner_id = %(partner)s;
            -- the ledger first: else deleting the events clears its rows' event one row at a time
            DELETE FROM mautomate_score_entry WHERE partner_id = %(partner)s OR lead_id = ANY(%(leads)s);
            DELETE FROM mautomate_score_queue WHERE partner_id = %(partner)s OR lead_id = ANY(%(leads)s);
            DELETE FROM mautomate_event
             WHERE partner_id = %(partner)s
                OR (partner_id IS NULL AND (lead_id = ANY(%(leads)s) OR visitor_id = ANY(%(visitors)s)
                                            OR anonymous_id = ANY(%(browsers)s)));
        """, hash=SQL(BROWSER_HASH_SQL.format('browser.anonymous_id')), partner=self.id, browsers=browser_ids,
            leads=leads.ids, visitors=visitor_ids))
        self.env['mautomate.event'].invalidate_model()
        self.env['mautomate.score.entry'].invalidate_model()
        return visitor_ids

    def _get_message_create_valid_field_names(self):
        # The contact messages tracking writes are marked: erasure removes them, never a colleague's.
        return super()._get_message_create_valid_field_names() | {'mautomate_tracking'}

    def _mautomate_opt_in(self):
        """ These contacts gave their consent again: those whose tracking was erased are tracked again, their
        browsers too (the Do Not Track set by someone else stays). """
        erased = self.sudo().filtered('mautomate_erased_on')
        if erased:
            erased.write({'mautomate_no_tracking': False, 'mautomate_erased_on': False})
            self.env['mautomate.erased.browser'].sudo().search([('partner_id', 'in', erased.ids)]).unlink()

    @api.model
    def _mautomate_find_or_create_by_email(self, names_by_email, values_by_email=None):
        """ {e-mail: name or None} -> {normalized e-mail: partner}: a contact with that e-mail, else a
        new one (given `values_by_email[normalized]` too); never matched by name.

        Concurrent requests for the same new e-mail (a double click) must not create two contacts:
        the e-mails without a contact are locked for the transaction, and a request that had to wait
        for another one, or began before another one's end, restarts with a fresh snapshot (a
        serialization failure, which Odoo retries), in which the other's contact is visible. Known e-mails take no lock.
        """
        emails = {}
        for email, name in names_by_email.items():
            if normalized := tools.email_normalize(email):
                emails.setdefault(normalized, tools.formataddr((name or '', normalized)) if name else normalized)
        if not emails:
            return {}
        known = set(self.sudo().search(
            [('email_normalized', 'in', list(emails))]).mapped('email_normalized'))
        if new_emails := sorted(set(emails) - known):
            self._mautomate_lock_emails(new_emails)
        partners = self.sudo()._find_or_create_from_emails(list(emails.values()), additional_values=values_by_email)
        return dict(zip(emails, partners, strict=True))

    @api.model
    def _mautomate_lock_emails(self, emails_normalized):
        """ Serialise what transactions do for these e-mails (find or create their contact, file a form's lead). """
        self.env['mautomate.lock']._acquire([f'email:{email}' for email in emails_normalized])

    def _mautomate_history_protected(self):
        """ The contacts that never receive an anonymous browser's history: the companies' own and
        those of internal and archived users (the public user among them). """
        if not self:
            return self
        self.env.cr.execute(SQL("""
            SELECT partner_id FROM res_company WHERE partner_id = ANY(%(ids)s)
             UNION
            SELECT partner_id FROM res_users WHERE partner_id = ANY(%(ids)s) AND (NOT share OR NOT active)
        """, ids=self.ids))
        return self.browse(row[0] for row in self.env.cr.fetchall())
