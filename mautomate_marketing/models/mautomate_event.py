import json
import logging
from datetime import timedelta

from odoo import _, api, fields, models, modules, tools
from odoo.tools import SQL

from .event_validation import MAX_NAME_LENGTH, MAX_URL_LENGTH, EventValidationError

_logger = logging.getLogger(__name__)

EVENT_TYPES = [
    ('page_view', 'Page View'),
    ('form_submit', 'Form Submit'),
    ('email_sent', 'E-mail Sent'),
    ('email_open', 'E-mail Opened'),
    ('email_click', 'E-mail Clicked'),
    ('email_bounce', 'E-mail Bounced'),
    ('email_reply', 'E-mail Replied'),
    ('link_click', 'Link Click'),
    ('download', 'File Download'),
    ('cta_click', 'CTA Click'),
    ('custom', 'Custom'),
]
EVENT_SOURCES = [
    ('website', 'Odoo Website'),
    ('tracker', 'Tracker Snippet'),
    ('email', 'E-mail'),
    ('api', 'API'),
]
# Column -> SQL type of the values _ingest accepts, in INSERT order.
INGEST_COLUMNS = {
    'occurred_at': 'timestamp', 'event_type': 'varchar', 'source': 'varchar', 'name': 'varchar', 'url': 'varchar',
    'visitor_id': 'int4', 'anonymous_id': 'varchar', 'partner_id': 'int4', 'lead_id': 'int4',
    'res_model': 'varchar', 'res_id': 'int4', 'value': 'float8',
    'campaign_id': 'int4', 'source_id': 'int4', 'medium_id': 'int4', 'payload': 'jsonb',
}

# Static parts are our own column names; rows and uid are passed as SQL parameters.
_INGEST_COLUMN_LIST = ', '.join(f'"{column}"' for column in INGEST_COLUMNS)
_INGEST_SELECTED = ', '.join(
    'visitor.id' if column == 'visitor_id' else 'contact.id' if column == 'partner_id' else f'v."{column}"::{sql_type}'
    for column, sql_type in INGEST_COLUMNS.items()
)
INGEST_QUERY = f"""
    INSERT INTO mautomate_event ({_INGEST_COLUMN_LIST}, create_uid, write_uid, create_date, write_date)
    SELECT {_INGEST_SELECTED}, %(uid)s, %(uid)s, now() at time zone 'UTC', now() at time zone 'UTC'
      FROM (VALUES %(rows)s) AS v({_INGEST_COLUMN_LIST}, visitor_token)
 LEFT JOIN LATERAL (
           SELECT id, partner_id FROM website_visitor WHERE id = v.visitor_id::int4
            UNION ALL
           SELECT id, partner_id FROM website_visitor WHERE access_token = v.visitor_token::varchar
           LIMIT 1) visitor ON TRUE
 LEFT JOIN res_partner contact ON contact.id = COALESCE(
           v.partner_id::int4,
           visitor.partner_id,
           (SELECT known.partner_id FROM mautomate_event known
             WHERE known.anonymous_id = v.anonymous_id::varchar AND known.partner_id IS NOT NULL
          ORDER BY known.id DESC LIMIT 1))
     WHERE contact.id IS NULL OR NOT (
           COALESCE(contact.mautomate_no_tracking, FALSE)
           OR EXISTS(SELECT 1 FROM mail_blacklist blacklist
                      WHERE blacklist.active AND blacklist.email = contact.email_normalized))
 RETURNING id
"""


class MautomateEvent(models.Model):
    """ One thing a person did: the append-only log every other feature reads. """
    _name = 'mautomate.event'
    _description = 'Marketing Event'
    _order = 'occurred_at DESC, id DESC'
    _rec_name = 'name'

    # what and when
    occurred_at = fields.Datetime('When', required=True, default=fields.Datetime.now, readonly=True, index=True)
    event_type = fields.Selection(EVENT_TYPES, 'Type', required=True, readonly=True)
    source = fields.Selection(EVENT_SOURCES, 'Source', required=True, default='website', readonly=True)
    name = fields.Char('What', readonly=True, help="Page title, mailing subject, CTA label or custom event name.")
    url = fields.Char('Where', readonly=True)
    value = fields.Float('Value', readonly=True, help="A measure that comes with the event: seconds watched, amount, ...")
    payload = fields.Json('Payload', readonly=True, help="Extra data sent with the event, at most 4 kB.")
    # who
    visitor_id = fields.Many2one('website.visitor', 'Visitor', readonly=True, ondelete='set null', index='btree_not_null')
    anonymous_id = fields.Char('Browser Id', readonly=True, index='btree_not_null',
                               help="First-party cookie id of the browser, kept across sessions and sites.")
    partner_id = fields.Many2one('res.partner', 'Contact', readonly=True, ondelete='cascade', index=True)
    lead_id = fields.Many2one('crm.lead', 'Lead', readonly=True, ondelete='set null', index='btree_not_null')
    # about which record
    res_model = fields.Char('Related Model', readonly=True)
    res_id = fields.Many2oneReference('Related Record', model_field='res_model', readonly=True)
    # from which campaign
    campaign_id = fields.Many2one('utm.campaign', 'Campaign', readonly=True, ondelete='set null')
    source_id = fields.Many2one('utm.source', 'UTM Source', readonly=True, ondelete='set null')
    medium_id = fields.Many2one('utm.medium', 'Medium', readonly=True, ondelete='set null')

    def init(self):
        # The timeline reads (partner, time), the identity merge (visitor/browser, no partner yet), reports (type, time).
        tools.create_index(self.env.cr, 'mautomate_event_partner_time_idx', self._table,
                           ['partner_id', 'occurred_at DESC'], where='partner_id IS NOT NULL')
        tools.create_index(self.env.cr, 'mautomate_event_type_time_idx', self._table, ['event_type', 'occurred_at DESC'])
        tools.create_index(self.env.cr, 'mautomate_event_anonymous_partner_idx', self._table,
                           ['anonymous_id', 'id DESC'], where='anonymous_id IS NOT NULL')

    @api.depends('name', 'event_type')
    def _compute_display_name(self):
        labels = dict(self._fields['event_type']._description_selection(self.env))
        for event in self:
            event.display_name = event.name or labels.get(event.event_type)

    # ------------------------------------------------------------
    # Ingestion: the one way in
    # ------------------------------------------------------------

    @api.model
    def _ingest(self, vals_list):
        """ Store events in one INSERT ... SELECT, bypassing the ORM for speed (like website.track).

        Each dict holds keys of INGEST_COLUMNS, and may name its website visitor by Odoo's access
        token ('visitor_token') instead of its id. An event without a contact gets its visitor's,
        or the one its browser was last seen as; events of contacts who opted out of tracking, or
        whose e-mail is blacklisted, are dropped. Returns the stored events.
        """
        if not vals_list:
            return self.browse()
        self.env['res.partner'].flush_model(['mautomate_no_tracking', 'email_normalized'])
        self.env['mail.blacklist'].flush_model(['email', 'active'])
        self.flush_model()
        event_ids = [row[0] for row in self.env.execute_query(SQL(
            INGEST_QUERY,
            uid=self.env.uid,
            rows=SQL(', ').join(SQL('(%s)', SQL(', ').join(self._ingest_row(vals))) for vals in vals_list),
        ))]
        self.invalidate_model()
        return self.browse(event_ids)

    @api.model
    def _ingest_row(self, vals):
        row = []
        for column in INGEST_COLUMNS:
            value = vals.get(column)
            if column == 'occurred_at':
                value = value or fields.Datetime.now()
            elif column == 'source':
                value = value or 'website'
            elif column == 'url' and value:
                value = value[:MAX_URL_LENGTH]
            elif column == 'name' and value:
                value = value[:MAX_NAME_LENGTH]
            elif column == 'payload' and value is not None:
                value = json.dumps(value)
            # An ORM-style False or '' means no value; 0 stays 0.
            row.append(SQL('%s', None if value is False or value == '' else value))
        row.append(SQL('%s', vals.get('visitor_token')))
        return row

    @api.model
    def _ingest_api_events(self, vals_list):
        """ Store validated API events, finding (or creating) each contact by e-mail or id. """
        partner_ids = {vals['partner_id'] for vals in vals_list if vals['partner_id']}
        existing_ids = set(self.env['res.partner'].sudo().browse(partner_ids).exists().ids)
        if missing := partner_ids - existing_ids:
            raise EventValidationError(f"unknown partner_id {min(missing)}", 404)
        partner_by_email = self.env['res.partner']._mautomate_find_or_create_by_email(
            {vals['email']: vals['contact_name'] for vals in vals_list if vals['email'] and not vals['partner_id']})
        for vals in vals_list:
            email = vals.pop('email')
            del vals['contact_name']
            vals['partner_id'] = vals['partner_id'] or partner_by_email[tools.email_normalize(email)].id
        return self._ingest(vals_list)

    # ------------------------------------------------------------
    # Identity
    # ------------------------------------------------------------

    @api.model
    def _attach_anonymous_history(self, partner, visitors=None, anonymous_ids=()):
        """ Give a contact every earlier event of its browsers, in one statement.

        Browsers are the given website visitors and cookie ids, plus every cookie id those
        visitors were seen with. A contact that may not be tracked loses that history instead.
        Returns the number of events attached (or erased).
        """
        partner.ensure_one()
        visitor_ids = list(visitors.ids) if visitors else []
        anonymous_ids = [anonymous_id for anonymous_id in anonymous_ids if anonymous_id]
        if not visitor_ids and not anonymous_ids:
            return 0
        self.flush_model()
        browsers = SQL("""
            partner_id IS NULL AND (
                visitor_id = ANY(%(visitors)s) OR anonymous_id = ANY(%(anonymous)s)
                OR anonymous_id IN (SELECT anonymous_id FROM mautomate_event
                                     WHERE visitor_id = ANY(%(visitors)s) AND anonymous_id IS NOT NULL))
        """, visitors=visitor_ids, anonymous=anonymous_ids)
        if partner.sudo().mautomate_no_tracking or partner.sudo().is_blacklisted:
            query = SQL("DELETE FROM mautomate_event WHERE %s", browsers)
        else:
            query = SQL("UPDATE mautomate_event SET partner_id = %s WHERE %s", partner.id, browsers)
        self.env.cr.execute(query)
        self.invalidate_model(['partner_id'])
        return self.env.cr.rowcount

    # ------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------

    @api.model
    def _action_timeline(self, title, domain):
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_event_action_timeline')
        action.update({'display_name': _("Timeline: %s", title), 'domain': domain})
        return action

    @api.model
    def _get_tracker_snippet(self):
        """ The HTML a marketer pastes into a site that is not on Odoo to track it. """
        base_url = self.get_base_url()
        return (
            '<script>\n'
            '  window.mautomateTracker = {endpoint: "%(base)s/mautomate/track", requireConsent: false};\n'
            '</script>\n'
            '<script async src="%(base)s/mautomate_marketing/static/src/tracker/tracker.js"></script>\n'
            '<!-- Mark calls to action with data-mautomate-cta="Name"; after consent call mautomateTracker.consent(true). -->'
        ) % {'base': base_url}

    # ------------------------------------------------------------
    # Privacy
    # ------------------------------------------------------------

    @api.model
    def _get_retention_days(self):
        return int(self.env['ir.config_parameter'].sudo().get_param('mautomate_marketing.retention_days', 0) or 0)

    @api.model
    def _cron_delete_expired_events(self, batch_size=10000, max_batches=50):
        """ Delete events older than the retention period, one committed batch at a time. """
        retention_days = self._get_retention_days()
        if retention_days <= 0:
            self.env['ir.cron']._notify_progress(done=0, remaining=0)
            return 0
        cutoff = fields.Datetime.now() - timedelta(days=retention_days)
        auto_commit = not modules.module.current_test
        deleted = 0
        for _batch in range(max_batches):
            self.env.cr.execute(SQL("""
                DELETE FROM mautomate_event WHERE id IN (
                    SELECT id FROM mautomate_event WHERE occurred_at < %s
                     LIMIT %s FOR UPDATE SKIP LOCKED)
            """, cutoff, batch_size))
            deleted += self.env.cr.rowcount
            done_batch = self.env.cr.rowcount < batch_size
            if auto_commit:
                self.env.cr.commit()
            if done_batch:
                break
        self.invalidate_model()
        remaining = self.search_count([('occurred_at', '<', cutoff)])
        self.env['ir.cron']._notify_progress(done=deleted, remaining=remaining)
        _logger.info("Deleted %s marketing events older than %s days, %s remain", deleted, retention_days, remaining)
        return deleted
