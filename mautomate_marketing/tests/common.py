import json
import uuid

from odoo.tests import common


class MautomateCase(common.TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Event = cls.env['mautomate.event']
        cls.partner = cls.env['res.partner'].create({'name': 'Ann Prospect', 'email': 'ann@prospect.example.com'})

    @staticmethod
    def new_browser_id():
        return uuid.uuid4().hex

    def ingest(self, **vals):
        return self.Event._ingest([{'event_type': 'page_view', 'source': 'website', **vals}])


def leave_database_as_found(case):
    """ For a test committing on cursors of its own, which makes and deletes its own records: the database's own
    work is left alone and what the test's commits add on the side is removed at its end. Committed runs of the
    crons take the rows they work on with SKIP LOCKED: a connection of the test's own locks the queued refreshes
    and the flow steps the database had until the test ends, so that the test's runs do only the work it made.
    The crons' wake-ups and the lock buckets the test's commits added are deleted. """
    with case.registry.cursor() as cr:
        cr.execute("SELECT COALESCE(max(id), 0) FROM ir_cron_trigger")
        last_trigger = cr.fetchone()[0]
        cr.execute("SELECT array_agg(bucket) FROM mautomate_lock")
        buckets = cr.fetchone()[0] or []
    case.addCleanup(_forget_side_rows, case.registry, last_trigger, buckets)
    holder = case.registry.cursor()
    case.addCleanup(holder.close)
    case.addCleanup(holder.rollback)
    holder.execute("SELECT 1 FROM mautomate_score_queue FOR UPDATE")
    holder.execute("SELECT 1 FROM mautomate_flow_trace FOR UPDATE")


def _forget_side_rows(registry, last_trigger, buckets):
    with registry.cursor() as cr:
        cr.execute("DELETE FROM ir_cron_trigger WHERE id > %s", [last_trigger])
        cr.execute("DELETE FROM mautomate_lock WHERE bucket <> ALL(%s::int4[])", [buckets])


class MautomateHttpCase(common.HttpCase):
    # Page tracking writes on page requests: like Odoo's own website visitor tests, use read/write cursors.
    readonly_enabled = False
    BROWSER_USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A cold first start of Chromium on a busy machine takes over Odoo's 10 s, which skips the tour: allow 30 s.
        iterations = common.CHECK_BROWSER_ITERATIONS
        common.CHECK_BROWSER_ITERATIONS = max(iterations, 300)
        cls.addClassCleanup(setattr, common, 'CHECK_BROWSER_ITERATIONS', iterations)

    def setUp(self):
        super().setUp()
        self.opener.headers['User-Agent'] = self.BROWSER_USER_AGENT
        self.env.cr.execute("SELECT COALESCE(MAX(id), 0) FROM mautomate_event")
        self.events_before = self.env.cr.fetchone()[0]

    @staticmethod
    def new_browser_id():
        return uuid.uuid4().hex

    def post_json(self, path, body, headers=None):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.url_open(path, data=data, headers={'Content-Type': 'application/json', **(headers or {})})

    def events(self, domain=()):
        self.env.invalidate_all()
        """ Events stored since the test began (the demo data has some). """
        return self.env['mautomate.event'].search([('id', '>', self.events_before), *domain])
