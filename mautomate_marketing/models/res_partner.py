from odoo import api, fields, models, tools
from odoo.exceptions import AccessError
from odoo.tools import SQL

EVENT_READERS = 'sales_team.group_sale_salesman,mautomate_marketing.group_mautomate_user'


class ResPartner(models.Model):
    _inherit = 'res.partner'

    # Contacts are found by e-mail on every form, API call and lead timeline (crm indexes its leads' the same way).
    email_normalized = fields.Char(index='btree_not_null')  # inherited via mail.thread.blacklist
    mautomate_no_tracking = fields.Boolean(
        'Do Not Track', groups='base.group_user',
        help="This contact asked not to be tracked: no page view, e-mail or API event is logged for it.")
    # Only those who may read the event log (sales, marketing automation) see a contact's events.
    mautomate_event_ids = fields.One2many('mautomate.event', 'partner_id', 'Marketing Events', groups=EVENT_READERS)
    mautomate_event_count = fields.Integer('Events', compute='_compute_mautomate_event_count', groups=EVENT_READERS)

    def _compute_mautomate_event_count(self):
        counts = dict(self.env['mautomate.event']._read_group([('partner_id', 'in', self.ids)], ['partner_id'], ['__count']))
        for partner in self:
            partner.mautomate_event_count = counts.get(partner._origin, 0)

    def action_mautomate_timeline(self):
        self.ensure_one()
        return self.env['mautomate.event']._action_timeline(self.display_name, [('partner_id', '=', self.id)])

    def mautomate_get_timeline_data(self, event_types=None, limit=None):
        """ The Timeline tab: chart, type counts and the latest events by day and visit. """
        self.ensure_one()
        return self.env['mautomate.event']._get_timeline_data([('partner_id', '=', self.id)], event_types, limit)

    def action_mautomate_erase_tracking(self):
        """ Right to erasure: delete the contacts' events and their website visitor history. """
        if not self.env.user.has_group('mautomate_marketing.group_mautomate_manager'):
            raise AccessError(self.env._("Only Marketing Automation managers can erase tracking data."))
        self.env['mautomate.event'].sudo().search([('partner_id', 'in', self.ids)]).unlink()
        self.env['website.visitor'].sudo().search([('partner_id', 'in', self.ids)]).unlink()
        for partner in self:
            partner.sudo().message_post(body=self.env._("Tracking data erased by %s.", self.env.user.name))

    @api.model
    def _mautomate_find_or_create_by_email(self, names_by_email, values_by_email=None):
        """ {e-mail: name or None} -> {normalized e-mail: partner}: a contact with that e-mail, else a
        new one (given `values_by_email[normalized]` too); never matched by name.

        Concurrent requests for the same new e-mail (a double click) must not create two contacts:
        the e-mails without a contact are locked for the transaction, and a request that had to wait
        for another one restarts with a fresh snapshot (a serialization failure, which Odoo retries),
        in which the other's contact is visible. Known e-mails take no lock.
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
        """ Serialise the find-or-create of these e-mails across transactions. """
        keys = [f'mautomate_marketing.email:{email}' for email in emails_normalized]
        self.env.cr.execute(SQL("SELECT bool_and(pg_try_advisory_xact_lock(hashtext(key))) FROM unnest(%s::text[]) key", keys))
        if self.env.cr.fetchone()[0]:
            return
        # Another transaction holds one: wait for it to end, then restart so that its contact is seen.
        self.env.cr.execute(SQL("SELECT pg_advisory_xact_lock(hashtext(key)) FROM unnest(%s::text[]) key", keys))
        self.env.cr.execute(SQL("""DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
            MESSAGE = 'mautomate: a contact with this e-mail was being created concurrently'; END $$"""), log_exceptions=False)

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
