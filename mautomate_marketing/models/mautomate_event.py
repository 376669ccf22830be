import itertools
import json
import logging
from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlsplit

import psycopg2
import pytz
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.http import request
from odoo.osv import expression
from odoo.tools import SQL, get_lang

from ..tools.batches import execute_in_batches
from ..tools.event_validation import MAX_NAME_LENGTH, MAX_URL_LENGTH, EventValidationError
from .mautomate_erased_browser import BROWSER_HASH_SQL

_logger = logging.getLogger(__name__)

# The Timeline tab shows the latest events (at most TIMELINE_MAX_LIMIT); a visit ends after 30 idle minutes.
TIMELINE_LIMIT = 100
TIMELINE_MAX_LIMIT = 1000
VISIT_GAP = timedelta(minutes=30)
# A browser's views of one CTA, form or pop-up on one page within 30 minutes are one event: reloads do not inflate them.
REPEATED_VIEW_WINDOW = timedelta(minutes=30)
REPEATED_VIEW_TYPES = frozenset({'cta_view', 'form_view', 'popup_view'})
REPEATED_VIEW_SQL = "event_type IN ('cta_view', 'form_view', 'popup_view') AND anonymous_id IS NOT NULL"

EVENT_TYPES = [
    ('page_view', 'Page View'),
    ('form_view', 'Form Shown'),
    ('form_submit', 'Form Submit'),
    ('email_sent', 'E-mail Sent'),
    ('email_open', 'E-mail Opened'),
    ('email_click', 'E-mail Clicked'),
    ('email_bounce', 'E-mail Bounced'),
    ('email_reply', 'E-mail Replied'),
    ('link_click', 'Link Click'),
    ('download', 'File Download'),
    ('cta_click', 'CTA Click'),
    ('cta_view', 'CTA Shown'),
    ('popup_view', 'Pop-up Shown'),
    ('custom', 'Custom'),
    ('stage_change', 'Lifecycle Stage Changed'),
    ('activity_done', 'Activity Done'),
]
EVENT_SOURCES = [
    ('website', 'Odoo Website'),
    ('tracker', 'Tracker Snippet'),
    ('email', 'E-mail'),
    ('api', 'API'),
    ('crm', 'CRM'),
]
# Column -> SQL type of the values _ingest accepts, in INSERT order.
INGEST_COLUMNS = {
    'occurred_at': 'timestamp', 'event_type': 'varchar', 'source': 'varchar', 'name': 'varchar', 'url': 'varchar',
    'visitor_id': 'int4', 'anonymous_id': 'varchar', 'partner_id': 'int4', 'lead_id': 'int4',
    'res_model': 'varchar', 'res_id': 'int4', 'value': 'float8',
    'campaign_id': 'int4', 'source_id': 'int4', 'medium_id': 'int4', 'payload': 'jsonb', 'api_key_id': 'int4',
    'company_id': 'int4',
}

# Static parts are our own column names and types; values and uid are passed as SQL parameters.
_INGEST_COLUMN_LIST = ', '.join(f'"{column}"' for column in INGEST_COLUMNS)
_INGEST_VALUES = ', '.join(
    'v_visitor' if column == 'visitor_id' else 'v_contact' if column == 'partner_id'
    else 'COALESCE(v_owner, p_company_id)' if column == 'company_id' else f'p_{column}'
    for column in INGEST_COLUMNS
)
# One event in: its visitor (by id, else by Odoo's access token), its contact (given, else the visitor's, else the
# one its browser is proven as: an e-mail typed in a form is a claim and names no later event); events of opted-out
# and blacklisted contacts are dropped. Odoo resets a pooled
# connection (DISCARD ALL) each time a request borrows it, which drops every cached plan: each request plans the
# statements it runs anew. So each step is a simple statement, planned only when its branch runs (an anonymous
# page view never plans the contact check), rather than one INSERT joining four tables. Its company is its API key's,
# else its lead's, else the one given (the website's, known to the caller without a query).
INGEST_FUNCTION = f"""
CREATE OR REPLACE FUNCTION mautomate_event_ingest(
    {', '.join(f'p_{column} {sql_type}' for column, sql_type in INGEST_COLUMNS.items())},
    p_visitor_token varchar, p_uid int4) RETURNS int4 LANGUAGE plpgsql VOLATILE
    SET plan_cache_mode = force_generic_plan AS $function$
DECLARE
    v_visitor int4;
    v_contact int4;
    v_refused bool;
    v_owner int4;
    v_event int4;
BEGIN
    IF p_api_key_id IS NOT NULL THEN
        SELECT company_id INTO v_owner FROM mautomate_api_key WHERE id = p_api_key_id;
    END IF;
    IF v_owner IS NULL AND p_lead_id IS NOT NULL THEN
        SELECT company_id INTO v_owner FROM crm_lead WHERE id = p_lead_id;
    END IF;
    IF p_visitor_id IS NOT NULL THEN
        SELECT id, partner_id INTO v_visitor, v_contact FROM website_visitor WHERE id = p_visitor_id;
    END IF;
    IF v_visitor IS NULL AND p_visitor_token IS NOT NULL THEN
        SELECT id, partner_id INTO v_visitor, v_contact FROM website_visitor WHERE access_token = p_visitor_token;
    END IF;
    v_contact := COALESCE(p_partner_id, v_contact);
    IF v_contact IS NULL AND p_anonymous_id IS NOT NULL THEN
        -- the contact it is proven as, else the erased contact it was a browser of (refused below until it opts in)
        v_contact := COALESCE(
            (SELECT proven.partner_id FROM mautomate_proven_browser proven WHERE proven.browser_id = p_anonymous_id),
            (SELECT erased.partner_id FROM mautomate_erased_browser erased
              WHERE erased.browser_hash = {BROWSER_HASH_SQL.format('p_anonymous_id')}));
    END IF;
    IF v_contact IS NOT NULL THEN
        -- An unknown contact id stores no contact.
        SELECT contact.id, COALESCE(contact.mautomate_no_tracking, FALSE) OR EXISTS(
                   SELECT 1 FROM mail_blacklist blacklist WHERE blacklist.active AND blacklist.email = contact.email_normalized)
          INTO v_contact, v_refused
          FROM res_partner contact WHERE contact.id = v_contact;
        IF v_refused THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO mautomate_event ({_INGEST_COLUMN_LIST}, create_uid, write_uid, create_date, write_date)
    VALUES ({_INGEST_VALUES}, p_uid, p_uid, now() at time zone 'UTC', now() at time zone 'UTC')
    RETURNING id INTO v_event;
    RETURN v_event;
END
$function$
"""
_INGEST_ARGUMENTS = ', '.join(f'%s::{sql_type}' for sql_type in INGEST_COLUMNS.values())
# One event: a plain call, the values as parameters (the visitor token, then the uid, last).
INGEST_CALL = f"SELECT mautomate_event_ingest({_INGEST_ARGUMENTS}, %s::varchar, %s)"
# A batch is one statement: the function for each row, in order; dropped events give NULL.
INGEST_QUERY = f"""
    SELECT mautomate_event_ingest({', '.join(f'v."{column}"::{sql_type}' for column, sql_type in INGEST_COLUMNS.items())},
                                  v.visitor_token::varchar, %(uid)s)
      FROM (VALUES %(rows)s) AS v({_INGEST_COLUMN_LIST}, visitor_token)
"""
INGEST_ROW = f"({', '.join(['%s'] * (len(INGEST_COLUMNS) + 1))})"


class MautomateEvent(models.Model):
    """ One thing a person did: the append-only log every other feature reads. """
    _name = 'mautomate.event'
    _description = 'Marketing Event'
    _order = 'occurred_at DESC, id DESC'
    _rec_name = 'name'

    # what and when
    occurred_at = fields.Datetime('Date', required=True, default=fields.Datetime.now, readonly=True, index=True)
    event_type = fields.Selection(EVENT_TYPES, 'Type', required=True, readonly=True)
    source = fields.Selection(EVENT_SOURCES, required=True, default='website', readonly=True)
    name = fields.Char('Title', readonly=True, help="Page title, mailing subject, CTA label or custom event name.")
    url = fields.Char('URL', readonly=True)
    value = fields.Float(readonly=True, help="A measure that comes with the event: seconds watched, amount, ...")
    payload = fields.Json(readonly=True, help="Extra data sent with the event, at most 4 kB.")
    # A Json field has no form widget: the form shows the payload as indented text.
    payload_text = fields.Text('Payload (Formatted)', compute='_compute_payload_text')
    # who
    visitor_id = fields.Many2one('website.visitor', 'Website Visitor', readonly=True, ondelete='set null', index='btree_not_null')
    visitor_label = fields.Char('Visitor', compute='_compute_visitor_label',
                                help="The website visitor's contact, or where and when an anonymous visitor was first seen.")
    # anonymous_id and partner_id lead the composite indexes of init(), which serve their searches too.
    anonymous_id = fields.Char('Browser ID', readonly=True,
                               help="Browser ID: the first-party cookie id of the browser, kept across sessions and sites.")
    partner_id = fields.Many2one('res.partner', 'Contact', readonly=True, ondelete='cascade')
    lead_id = fields.Many2one('crm.lead', readonly=True, ondelete='set null', index='btree_not_null')
    # about which record
    res_model = fields.Char('Related Document Model', readonly=True)
    res_id = fields.Many2oneReference('Related Document ID', model_field='res_model', readonly=True)
    res_model_name = fields.Char('Related Document Type', compute='_compute_related_document')
    related_record_name = fields.Char('Related Document', compute='_compute_related_document',
                                      help="Name of the record the event is about, if it still exists and you may read it.")
    # from which campaign
    campaign_id = fields.Many2one('utm.campaign', readonly=True, ondelete='set null')
    source_id = fields.Many2one('utm.source', 'UTM Source', readonly=True, ondelete='set null')
    medium_id = fields.Many2one('utm.medium', readonly=True, ondelete='set null')
    # from which system
    api_key_id = fields.Many2one('mautomate.api.key', 'API Key', readonly=True, ondelete='set null', index='btree_not_null',
                                 help="The API key the event was sent with.")
    # for which company: nullable without a default, so that adding it to a large log rewrites no row
    company_id = fields.Many2one('res.company', readonly=True, ondelete='set null',
                                 help="The company of the event's API key, else of its lead, else of the website it "
                                      "happened on. Empty: no company's, so every company's rules and flows take it.")

    def init(self):
        # Contact timelines and counts read (partner, time); page views find a browser's last contact by (browser, id);
        # event-type filters and reports read (type, time). Plans at scale: docs/indexes.rst.
        tools.create_index(self.env.cr, 'mautomate_event_partner_time_idx', self._table,
                           ['partner_id', 'occurred_at DESC'], where='partner_id IS NOT NULL')
        tools.create_index(self.env.cr, 'mautomate_event_type_time_idx', self._table, ['event_type', 'occurred_at DESC'])
        # A browser's events (its history to attach, its answers, its CTA conditions) by the leading column; its
        # anonymous ones apart, however many known ones it has.
        tools.create_index(self.env.cr, 'mautomate_event_browser_idx', self._table,
                           ['anonymous_id', '(partner_id IS NOT NULL)', 'id DESC'], where='anonymous_id IS NOT NULL')
        # Whether a browser saw a CTA, form or pop-up lately: one probe of an index only views pay for.
        tools.create_index(self.env.cr, 'mautomate_event_browser_view_idx', self._table,
                           ['anonymous_id', 'res_id', 'event_type', 'occurred_at DESC'], where=REPEATED_VIEW_SQL)
        # Its arguments follow INGEST_COLUMNS: drop any older signature rather than keep an overload.
        self.env.cr.execute("""
            DO $$ DECLARE signature regprocedure; BEGIN
                FOR signature IN SELECT oid::regprocedure FROM pg_proc WHERE proname = 'mautomate_event_ingest' LOOP
                    EXECUTE 'DROP FUNCTION ' || signature;
                END LOOP;
            END $$
        """)
        self.env.cr.execute(INGEST_FUNCTION)

    @api.depends('name', 'event_type')
    def _compute_display_name(self):
        labels = dict(self._fields['event_type']._description_selection(self.env))
        for event in self:
            event.display_name = event.name or labels.get(event.event_type)

    @api.depends('payload')
    def _compute_payload_text(self):
        for event in self:
            event.payload_text = json.dumps(event.payload, indent=2, ensure_ascii=False) if event.payload else False

    @api.depends('res_model', 'res_id')
    @api.depends_context('uid')
    def _compute_related_document(self):
        readable = {}
        res_ids = defaultdict(list)
        for event in self.filtered(lambda event: event.res_model in self.env):
            res_ids[event.res_model].append(event.res_id)
        for model, ids in res_ids.items():
            records = self.env[model].browse(ids)
            readable[model] = (self.env['ir.model']._get(model).name, records.exists()._filtered_access('read'))
        for event in self:
            model_name, records = readable.get(event.res_model, (False, None))
            event.res_model_name = model_name
            record = records and records.browse(event.res_id) & records
            event.related_record_name = record.display_name if record else False

    @api.depends('visitor_id')
    def _compute_visitor_label(self):
        # Visitors are read as sudo: marketing users see who, not Odoo's technical "Website Visitor #4".
        for event in self:
            visitor = event.visitor_id.sudo()
            if not visitor or visitor.partner_id:
                event.visitor_label = visitor.partner_id.name or False
                continue
            first_seen = tools.format_date(self.env, visitor.create_date)
            if visitor.country_id:
                event.visitor_label = self.env._("Anonymous visitor from %(country)s, first seen %(date)s",
                                        country=visitor.country_id.name, date=first_seen)
            else:
                event.visitor_label = self.env._("Anonymous visitor, first seen %(date)s", date=first_seen)

    # ------------------------------------------------------------
    # Ingestion: the one way in
    # ------------------------------------------------------------

    @api.model
    def _ingest(self, vals_list, savepoint=None, public=None):
        """ Store events in one statement, bypassing the ORM for speed (like website.track).

        Each dict holds keys of INGEST_COLUMNS, and may name its website visitor by Odoo's access
        token ('visitor_token') instead of its id. An event without a contact gets its visitor's,
        or the one its browser is proven as (mautomate.proven.browser); events of contacts who opted out of tracking, or
        whose e-mail is blacklisted, are dropped. An event's company is its API key's, else its lead's, else its
        'company_id' (by default the company of the request's website, if any). Returns the stored events.

        With `savepoint` (a name), the statement runs in a new savepoint opened in the same round
        trip, so that a page view costs one query; on error the savepoint is rolled back and the
        caller's transaction stays usable. `public` says whether the current user is the public user,
        when the caller knows it already.
        """
        if not vals_list:
            return self.browse()
        event_types = frozenset(vals.get('event_type') for vals in vals_list)
        if event_types & REPEATED_VIEW_TYPES:
            vals_list = self._without_repeated_views(vals_list)
            if not vals_list:
                return self.browse()
        # What the statement reads must be in the database: pending ORM changes of contacts, the
        # blacklist and events (none, most of the time: then even asking each model costs more).
        if self.env.cache.get_dirty_fields() or self.env.fields_to_compute():
            self.env['res.partner'].flush_model(['mautomate_no_tracking', 'email_normalized'])
            self.env['mail.blacklist'].flush_model(['email', 'active'])
            self.flush_model()
        # The public user (website visitors, beacons, API calls) created nothing: its events name no
        # user, which spares each of them two foreign-key checks, each locking that user's row.
        if public is None:
            public = self.env.user._is_public()
        uid = None if public else self.env.uid
        # On a website's pages its company is cached on the website: no query.
        website = request and getattr(request, 'website', None)
        if website_company := website and website._get_cached('company_id'):
            vals_list = [vals if 'company_id' in vals else {**vals, 'company_id': website_company} for vals in vals_list]
        if len(vals_list) == 1:
            query = SQL(INGEST_CALL, *self._ingest_row(vals_list[0]), uid)
        else:
            query = SQL(INGEST_QUERY, uid=uid,
                        rows=SQL(', ').join(SQL(INGEST_ROW, *self._ingest_row(vals)) for vals in vals_list))
        Scoring = self.env['mautomate.scoring']
        queue, flows = self._get_ingest_followups(event_types)
        if queue:
            # The refresh queue's rows are inserted by the same statement: one round trip for both.
            query = Scoring._enqueue_query(SQL("SELECT NULL::int4, NULL::int4, id FROM (%s) AS event(id) WHERE id IS NOT NULL", query))
        if savepoint:
            query = SQL('SAVEPOINT %s; %s', SQL.identifier(savepoint), query)
        try:
            rows = self.env.execute_query(query)
        except psycopg2.Error:
            if savepoint:
                self.env.cr.execute(SQL('ROLLBACK TO SAVEPOINT %s', SQL.identifier(savepoint)))
            raise
        # New rows only: nothing cached is stale.
        if queue:
            [(cron_awake, event_ids)] = rows
            if event_ids:
                Scoring._enqueued(cron_awake)
        else:
            event_ids = [row[0] for row in rows if row[0]]
        if flows:
            self.env['mautomate.flow']._enroll_from_events(event_ids, event_types)
        return self.browse(event_ids)

    @api.model
    def _without_repeated_views(self, vals_list):
        """ vals_list without the CTA, form and pop-up views that a browser already had within 30 minutes
        (logged, or earlier in vals_list): the same element showing the same (title) on the same page, as a reload
        does. Concurrent requests of one browser may both log theirs. """
        def key(vals):
            return (vals.get('anonymous_id'), vals.get('res_model'), vals.get('res_id'), vals['event_type'],
                    (vals.get('url') or '')[:MAX_URL_LENGTH] or None, (vals.get('name') or '')[:MAX_NAME_LENGTH] or None)

        views = [vals for vals in vals_list if vals.get('event_type') in REPEATED_VIEW_TYPES
                 and vals.get('anonymous_id') and vals.get('res_model') and vals.get('res_id')]
        if not views:
            return vals_list
        self.flush_model()
        self.env.cr.execute(SQL(
            """
            SELECT DISTINCT anonymous_id, res_model, res_id, event_type, url, name FROM mautomate_event
             WHERE %s AND anonymous_id = ANY(%s) AND res_id = ANY(%s)
               AND occurred_at > (now() at time zone 'UTC') - %s
            """, SQL(REPEATED_VIEW_SQL), list({vals['anonymous_id'] for vals in views}),
            list({vals['res_id'] for vals in views}), REPEATED_VIEW_WINDOW))
        seen = set(self.env.cr.fetchall())
        view_ids = {id(vals) for vals in views}
        kept = []
        for vals in vals_list:
            if id(vals) in view_ids:
                if key(vals) in seen:
                    continue
                seen.add(key(vals))
            kept.append(vals)
        return kept

    @api.model
    @tools.ormcache('event_types')
    def _get_ingest_followups(self, event_types):
        """ (queue for scoring, enrol in or wake flows): what new events of these types (a frozenset) need.
        Cached as one lookup, since every ingest asks: rules and flows clear it when they change. """
        return self.env['mautomate.scoring']._queues_events(event_types), any(self.env['mautomate.flow']._event_reactions(event_types))

    @api.model
    def _ingest_row(self, vals):
        """ The values of one event, in INGEST_COLUMNS order, then its visitor token. """
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
            row.append(None if value is False or value == '' else value)
        row.append(vals.get('visitor_token') or None)
        return row

    @api.model
    def _ingest_api_events(self, vals_list):
        """ Store validated API events, finding (or creating) each contact by e-mail or id. The company's own
        contacts and its users' (see res.partner._mautomate_history_protected) are refused as unknown ids are:
        the same 422 and message, so that a key never learns which ids exist. """
        partner_ids = {vals['partner_id'] for vals in vals_list if vals['partner_id']}
        existing = self.env['res.partner'].sudo().browse(partner_ids).exists()
        if refused := partner_ids - set((existing - existing._mautomate_history_protected()).ids):
            raise EventValidationError(f"partner_id {min(refused)} names no contact that takes API events", 422)
        # Contacts created for new e-mails go too when another e-mail of the request is refused.
        with self.env.cr.savepoint():
            partner_by_email = self.env['res.partner']._mautomate_find_or_create_by_email(
                {vals['email']: vals['contact_name'] for vals in vals_list if vals['email'] and not vals['partner_id']})
            by_email = self.env['res.partner'].browse(partner.id for partner in partner_by_email.values())
            if by_email._mautomate_history_protected():
                raise EventValidationError("'email' names no contact that takes API events", 422)
        for vals in vals_list:
            email = vals.pop('email')
            del vals['contact_name']
            vals['partner_id'] = vals['partner_id'] or partner_by_email[tools.email_normalize(email)].id
        return self._ingest(vals_list)

    @api.model
    def _backfill_company(self):
        """ Give events stored before events had a company the one ingest would give them: their API key's,
        else their lead's, else their website visitor's website's; others stay without. One statement per
        source, each on the events still without a company. Returns the number of events given one. """
        self.flush_model()
        count = 0
        for source in (
            SQL("FROM mautomate_api_key owner WHERE owner.id = e.api_key_id"),
            SQL("FROM crm_lead owner WHERE owner.id = e.lead_id"),
            SQL("FROM website_visitor visitor JOIN website owner ON owner.id = visitor.website_id WHERE visitor.id = e.visitor_id"),
        ):
            self.env.cr.execute(SQL("""
                UPDATE mautomate_event e SET company_id = owner.company_id %s
                   AND owner.company_id IS NOT NULL AND e.company_id IS NULL
            """, source))
            count += self.env.cr.rowcount
        self.invalidate_model(['company_id'])
        return count

    # ------------------------------------------------------------
    # Identity
    # ------------------------------------------------------------

    @api.model
    def _attach_anonymous_history(self, partner, visitors=None, anonymous_ids=()):
        """ Give a contact every earlier event of its browsers, in one statement.

        Browsers are the given website visitors and cookie ids, plus every cookie id those
        visitors were seen with. A contact that may not be tracked loses that history instead;
        the companies' and internal users' contacts get none (see _mautomate_history_protected).
        Returns the number of events attached (or erased).
        """
        partner.ensure_one()
        visitor_ids = list(visitors.ids) if visitors else []
        anonymous_ids = [anonymous_id for anonymous_id in anonymous_ids if anonymous_id]
        if (not visitor_ids and not anonymous_ids) or partner._mautomate_history_protected():
            return 0
        self.flush_model()
        browsers = SQL("""
            partner_id IS NULL AND (
                visitor_id = ANY(%(visitors)s) OR anonymous_id = ANY(%(anonymous)s)
                -- an array, not IN (SELECT ...): the planner then combines the three index scans instead of a full scan
                OR anonymous_id = ANY(ARRAY(SELECT anonymous_id FROM mautomate_event
                                             WHERE visitor_id = ANY(%(visitors)s) AND anonymous_id IS NOT NULL)))
        """, visitors=visitor_ids, anonymous=anonymous_ids)
        erase = partner.sudo().mautomate_no_tracking or partner.sudo().is_blacklisted
        if erase:
            query = SQL("DELETE FROM mautomate_event WHERE %s", browsers)
        else:
            query = SQL("UPDATE mautomate_event SET partner_id = %s WHERE %s RETURNING id, event_type", partner.id, browsers)
        self.env.cr.execute(query)
        count = self.env.cr.rowcount
        self.invalidate_model(['partner_id'])
        if count and not erase:
            # The history now has a contact: score it at once (page views only when a rule awards them).
            rows = self.env.cr.fetchall()
            self.env['mautomate.scoring']._score_new_events([row[0] for row in rows], {row[1] for row in rows})
        return count

    # ------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------

    @api.model
    def _action_timeline(self, title, domain):
        action = self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_event_action_timeline')
        action.update({'display_name': self.env._("Timeline: %s", title), 'domain': domain})
        return action

    @api.model
    def _get_tracker_snippet(self):
        """ The HTML a marketer pastes into a site that is not on Odoo to track it. """
        base_url = self.get_base_url()
        return str(self.env['ir.qweb']._render('mautomate_marketing.tracker_snippet', {
            'tracker_url': f'{base_url}/mautomate_marketing/static/src/tracker/tracker.js',
            'endpoint': f'{base_url}/mautomate/track',
        })).strip()

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
        deleted = execute_in_batches(self.env.cr, SQL("""
            DELETE FROM mautomate_event WHERE id IN (
                SELECT id FROM mautomate_event WHERE occurred_at < %s
                 LIMIT %s FOR UPDATE SKIP LOCKED)
        """, cutoff, batch_size), batch_size, max_batches)
        self.invalidate_model()
        remaining = self.search_count([('occurred_at', '<', cutoff)])
        self.env['ir.cron']._notify_progress(done=deleted, remaining=remaining)
        _logger.info("Deleted %s marketing events older than %s days, %s remain", deleted, retention_days, remaining)
        return deleted

    # ------------------------------------------------------------
    # Timeline tab
    # ------------------------------------------------------------

    @api.model
    def _get_timeline_data(self, domain, event_types=None, limit=None):
        """ What the Timeline tab of a contact or lead shows, for the person's events ``domain``.

        Returns the event types present with their counts, the activity chart (a bucket per day,
        week or month, counted in SQL) and the latest ``limit`` events of ``event_types`` (all if
        empty; TIMELINE_LIMIT by default), grouped by day and visit, newest first. Dates are in the
        user's time zone.
        """
        if event_types and not set(event_types) <= set(dict(EVENT_TYPES)):
            raise UserError(self.env._("Unknown event type: %s", ", ".join(sorted(set(event_types) - set(dict(EVENT_TYPES))))))
        if not isinstance(limit, (int, type(None))):
            raise UserError(self.env._("The number of events to show must be a whole number."))
        limit = max(1, min(limit or TIMELINE_LIMIT, TIMELINE_MAX_LIMIT))
        # Days (of the chart and of the list) are the user's: _read_group and context_timestamp read the context's tz.
        tz = self.env.context.get('tz') or self.env.user.tz
        tz = tz if tz in pytz.all_timezones_set else 'UTC'
        if self.env.context.get('tz') != tz:
            return self.with_context(tz=tz)._get_timeline_data(domain, event_types, limit)
        labels = dict(self._fields['event_type']._description_selection(self.env))
        type_rows = self._read_group(domain, ['event_type'], ['__count', 'occurred_at:min'], order='__count DESC')
        selected = list(event_types or [])
        if selected:
            domain = expression.AND([domain, [('event_type', 'in', selected)]])
        events = self.search_fetch(domain, ['occurred_at', 'event_type', 'name', 'url', 'visitor_id', 'anonymous_id',
                                            'source', 'value', 'campaign_id'], limit=limit) if type_rows else self
        return {
            'types': [{'type': event_type, 'label': labels[event_type], 'count': count}
                      for event_type, count, _first in type_rows],
            'total': sum(count for _type, count, _first in type_rows),
            'count': sum(count for event_type, count, _first in type_rows if not selected or event_type in selected),
            'shown': len(events),
            'chart': self._timeline_chart(domain, min((first for _type, _count, first in type_rows), default=None), labels),
            'days': self._timeline_days(events),
        }

    @api.model
    def _timeline_chart(self, domain, first, labels):
        """ Events per bucket and type, every bucket from the first event's to today's (empty ones too). """
        if not first:
            return {'interval': 'day', 'buckets': [], 'datasets': []}
        today = fields.Datetime.context_timestamp(self, fields.Datetime.now()).date()
        span = (today - fields.Datetime.context_timestamp(self, first).date()).days
        interval = 'day' if span <= 62 else 'week' if span <= 2 * 366 else 'month'
        counts = defaultdict(dict)
        for bucket, event_type, count in self._read_group(domain, [f'occurred_at:{interval}', 'event_type'], ['__count']):
            counts[event_type][bucket.date()] = count
        step = relativedelta(days=1) if interval == 'day' else relativedelta(weeks=1) if interval == 'week' else relativedelta(months=1)
        week_start = int(get_lang(self.env).week_start) - 1

        def bucket_of(day):
            # The bucket start _read_group gives: the week's first day per the language, the month's first.
            if interval == 'week':
                return day - relativedelta(days=(day.weekday() - week_start) % 7)
            return day.replace(day=1) if interval == 'month' else day

        # From the first event of any type (the axis stays put while filtering) to today or a later event;
        # at least two weeks of days, so that a single visit still reads as a moment in time.
        end = max([bucket_of(today)] + [day for by_day in counts.values() for day in by_day])
        bucket = bucket_of(fields.Datetime.context_timestamp(self, first).date())
        if interval == 'day':
            bucket = min(bucket, today - relativedelta(days=13))
        buckets = []
        while bucket <= end:
            buckets.append(bucket)
            bucket += step
        return {
            'interval': interval,
            'buckets': [fields.Date.to_string(bucket) for bucket in buckets],
            'datasets': [{'type': event_type, 'label': labels[event_type],
                          'data': [counts[event_type].get(bucket, 0) for bucket in buckets]}
                         for event_type in dict(EVENT_TYPES) if event_type in counts],
        }

    @api.model
    def _timeline_days(self, events):
        """ Events grouped into visits (one browser, less than 30 minutes between events) and days, newest first.

        Events without a browser (e-mails, API events) stand alone. A page view's duration is the
        time to the next page view of its visit; events inside a visit are in the order they happened.
        """
        visits, open_visits = [], {}
        for event in events.sorted(lambda event: (event.occurred_at, event.id)):
            browser = event.anonymous_id or (event.visitor_id and f'visitor-{event.visitor_id.id}')
            visit = open_visits.get(browser) if browser else None
            if not visit or event.occurred_at - visit['last'] >= VISIT_GAP:
                visit = {'browser': browser, 'events': [], 'last': event.occurred_at}
                visits.append(visit)
                if browser:
                    open_visits[browser] = visit
            visit['events'].append(event)
            visit['last'] = event.occurred_at
        days = {}
        for visit in reversed(visits):
            entry = self._timeline_visit(visit['events'], bool(visit['browser']))
            days.setdefault(entry['start'][:10], []).append(entry)
        return [{'date': date, 'entries': entries} for date, entries in days.items()]

    @api.model
    def _timeline_visit(self, events, is_visit):
        """ One visit, or one event on its own, as the Timeline tab shows it. """
        def local(moment):
            return fields.Datetime.to_string(fields.Datetime.context_timestamp(self, moment).replace(tzinfo=None))

        page_views = [event for event in events if event.event_type == 'page_view']
        durations = {view.id: (following.occurred_at - view.occurred_at).total_seconds()
                     for view, following in itertools.pairwise(page_views)}
        first_url = next((event.url for event in events if event.url), '')
        return {
            'key': f'{events[0].id}',
            'is_visit': is_visit,
            'start': local(events[0].occurred_at),
            'end': local(events[-1].occurred_at),
            'duration': (events[-1].occurred_at - events[0].occurred_at).total_seconds(),
            'page_count': len(page_views),
            'site': urlsplit(first_url).netloc if first_url else '',
            'campaign': events[0].campaign_id.sudo().name or '',
            'events': [{
                'id': event.id,
                'type': event.event_type,
                'title': event.name or (event.url and urlsplit(event.url).path) or '',
                # Only web addresses become links in the backend, whatever a client once sent.
                'url': event.url if event.url and urlsplit(event.url).scheme.lower() in ('http', 'https') else '',
                'time': local(event.occurred_at),
                'duration': durations.get(event.id),
                'source': event.source,
                'value': event.value,
            } for event in events],
        }
