import json
from contextlib import closing

from odoo.tests import new_test_user, tagged

from .common import MautomateHttpCase
from .test_cta import journey_cta
from .test_timeline_tab import ingest_journey

# What the web client calls on the screens that only read: Odoo 18 sends them to the database replica.
READ_ONLY_METHODS = {
    'res.partner': ['mautomate_get_timeline_data', 'action_mautomate_timeline', 'action_mautomate_score_entries'],
    'crm.lead': ['mautomate_get_timeline_data', 'action_mautomate_timeline', 'action_mautomate_score_entries'],
    'mautomate.cta': ['mautomate_snippet_fallback', 'action_open_events', 'action_open_ab_tests'],
    'mautomate.popup': ['action_open_ab_tests'],
    'mautomate.form': ['action_view_submits', 'action_open_ab_tests'],
    'mautomate.flow': ['action_open_participants', 'action_open_converted', 'action_open_traces'],
    'mautomate.score.rule': ['action_open_entries'],
    'mautomate.ab.variant': ['action_open_element'],
}
# What changes data stays on the primary.
WRITING_METHODS = {
    'mautomate.flow': ['action_start', 'action_pause', 'action_stop', 'action_enroll'],
    'mautomate.ab.test': ['action_start', 'action_evaluate', 'action_add_variant'],
    'mautomate.cta': ['action_new_ab_test'],
    'mautomate.score.rule': ['action_recompute_scores'],
    'res.partner': ['action_mautomate_erase_tracking'],
}
# With Odoo's own: the home page and the website pages (website.page, served by Odoo's fallback).
READ_ONLY_ROUTES = ['/mautomate/api/v1/openapi.json', '/mautomate/popup', '/']
# Tracking: page views, beacons, forms, calls to action, pop-up views, identify and the event API.
TRACKING_ROUTES = ['/mautomate/track', '/mautomate/identify', '/mautomate/api/v1/events', '/mautomate/cta/<int:cta_id>',
                   '/mautomate/cta/click', '/mautomate/popup/shown', '/mautomate/form/<string:slug>',
                   '/mautomate/form/<string:slug>/embed', '/mautomate/consent/confirm/<string:token>']


@tagged('post_install', '-at_install')
class TestReplica(MautomateHttpCase):
    """ With a read replica (db_replica_host), what only reads is served from it and tracking writes to the primary.
    Odoo's test cursors play the replica: a read-only route or method runs in a READ ONLY transaction. """
    readonly_enabled = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.marketer = new_test_user(cls.env, 'replica_marketer', groups='mautomate_marketing.group_mautomate_manager,'
                                     'sales_team.group_sale_salesman_all_leads')
        cls.partner = cls.env['res.partner'].create({'name': 'Rita Replica', 'email': 'rita@replica.example.com'})
        cls.lead = cls.env['crm.lead'].create({'name': 'Rita wants a demo', 'partner_id': cls.partner.id})
        ingest_journey(cls.env, cls.partner)
        # A running A/B test of a call to action, with views and a click.
        cls.cta = journey_cta(cls.env, 'Replica journey')
        ab_test = cls.env['mautomate.ab.test'].browse(cls.cta.action_new_ab_test()['res_id'])
        ab_test.action_start()
        line = cls.cta.line_ids[-1]
        browsers = [cls.new_browser_id() for _i in range(3)]
        cls.env['mautomate.event']._ingest(
            [cls.cta._mautomate_event_vals('cta_view', line, ab_test, browser, None, 'https://www.example.com/')
             for browser in browsers]
            + [cls.cta._mautomate_event_vals('cta_click', line, ab_test, browsers[0], None, 'https://www.example.com/')])
        cls.ab_test = ab_test
        # A running flow with a participant.
        template = cls.env['mail.template'].create({
            'name': 'Replica mail', 'model_id': cls.env['ir.model']._get_id('res.partner'), 'subject': 'Hello',
            'email_to': '{{ object.email_formatted }}', 'body_html': '<p>Hello</p>'})
        cls.flow = cls.env['mautomate.flow'].create({
            'name': 'Replica flow', 'trigger_ids': [(0, 0, {'trigger_type': 'event', 'event_type': 'form_submit'})],
            'step_ids': [(0, 0, {'name': 'Welcome', 'kind': 'email', 'mail_template_id': template.id})]})
        cls.flow.action_start()
        cls.flow.action_enroll(cls.partner.ids)

    def replica_cursor(self):
        """ A cursor as the replica gives: whatever this test wrote is flushed first, so that the replica has it. """
        self.env.flush_all()
        cursor = self.registry.cursor(readonly=True)
        self.addCleanup(cursor.close)
        # A write in what the test calls on it fails the test, as it would fail on a replica.
        cursor.execute("SHOW transaction_read_only")
        self.assertEqual(cursor.fetchone()[0], 'on')
        return closing(cursor)

    @staticmethod
    def sent_to_replica(model, method):
        """ Odoo's own rule for /web/dataset/call_kw and call_button (web's DataSet._call_kw_readonly). """
        for cls in type(model).mro():
            function = getattr(cls, method, None)
            if function is not None and hasattr(function, '_readonly'):
                return function._readonly
        return False

    def routing(self, path):
        rules = [rule for rule in self.env['ir.http'].routing_map().iter_rules() if rule.rule == path]
        self.assertTrue(rules, path)
        return rules[0].endpoint.routing

    def test_what_goes_to_the_replica(self):
        for model_name, methods in READ_ONLY_METHODS.items():
            for method in methods:
                self.assertTrue(self.sent_to_replica(self.env[model_name], method), f"{model_name}.{method}")
        for model_name, methods in WRITING_METHODS.items():
            for method in methods:
                self.assertFalse(self.sent_to_replica(self.env[model_name], method), f"{model_name}.{method}")
        for path in READ_ONLY_ROUTES:
            self.assertIs(self.routing(path)['readonly'], True, path)
        for path in TRACKING_ROUTES:
            self.assertIs(self.routing(path)['readonly'], False, path)

    def test_read_only_methods_on_a_replica(self):
        with self.replica_cursor() as cr:
            env = self.env(cr=cr, user=self.marketer)
            partner, lead = env['res.partner'].browse(self.partner.id), env['crm.lead'].browse(self.lead.id)
            for record in (partner, lead):
                data = record.mautomate_get_timeline_data(event_types=['page_view'], limit=3)
                self.assertEqual((data['total'], data['count'], data['shown']), (8, 5, 3))
                self.assertEqual(env['mautomate.event'].search_count(record.action_mautomate_timeline()['domain']), 8)
                self.assertTrue(record.action_mautomate_score_entries()['domain'])
            cta = env['mautomate.cta'].browse(self.cta.id)
            self.assertEqual(cta.mautomate_snippet_fallback()['label'], 'Free e-book')
            self.assertEqual(env['mautomate.event'].search_count(cta.action_open_events()['domain']), 4)
            self.assertEqual(env['mautomate.ab.test'].search(cta.action_open_ab_tests()['domain']), self.ab_test)
            variant = env['mautomate.ab.variant'].browse(self.ab_test.variant_ids[:1].id)
            self.assertEqual(variant.action_open_element()['res_id'], self.cta.id)
            flow = env['mautomate.flow'].browse(self.flow.id)
            self.assertEqual(env['mautomate.flow.participant'].search(flow.action_open_participants()['domain']).partner_id,
                             self.partner)
            self.assertEqual(flow.action_open_converted()['context']['search_default_converted'], 1)
            self.assertTrue(flow.action_open_traces()['domain'])
            form = env['mautomate.form'].search([], limit=1)
            self.assertTrue(form.action_view_submits()['domain'])
            rule = env['mautomate.score.rule'].search([], limit=1)
            self.assertEqual(rule.action_open_entries()['domain'], [('rule_id', '=', rule.id)])
            env.flush_all()

    def test_figures_read_on_a_replica(self):
        """ The screens' figures are computed when read (web_read, which Odoo sends to the replica): none writes. """
        with self.replica_cursor() as cr:
            env = self.env(cr=cr, user=self.marketer)
            figures = {
                'res.partner': ['mautomate_event_count', 'mautomate_score_why'],
                'crm.lead': ['mautomate_event_count', 'mautomate_score_why'],
                'mautomate.flow': ['participant_count', 'running_count', 'converted_count', 'conversion_rate', 'trace_count'],
                'mautomate.flow.step': ['waiting_count', 'done_count', 'skipped_count', 'skipped_reasons', 'error_count',
                                        'opened_count', 'clicked_count', 'outline_name'],
                'mautomate.ab.variant': ['views', 'conversions', 'rate', 'ci_low', 'ci_high', 'p_value', 'is_winner'],
                'mautomate.cta': ['view_count', 'click_count', 'ab_test_count'],
                'mautomate.form': ['submit_count', 'ab_test_count'],
                'mautomate.score.rule': ['entry_count', 'entry_points'],
            }
            records = {
                'res.partner': self.partner | self.env['mautomate.score.entry'].search([], limit=5).partner_id,
                'crm.lead': self.lead,
                'mautomate.flow': self.env['mautomate.flow'].search([]),
                'mautomate.flow.step': self.env['mautomate.flow.step'].search([]),
                'mautomate.ab.variant': self.ab_test.variant_ids,
                'mautomate.cta': self.env['mautomate.cta'].search([]),
                'mautomate.form': self.env['mautomate.form'].search([]),
                'mautomate.score.rule': self.env['mautomate.score.rule'].search([]),
            }
            values = {model_name: env[model_name].browse(records[model_name].ids).web_read(
                {field_name: {} for field_name in field_names}) for model_name, field_names in figures.items()}
            env.flush_all()
        self.assertEqual(values['res.partner'][0]['mautomate_event_count'], 8)
        self.assertEqual([(row['views'], row['conversions']) for row in values['mautomate.ab.variant']], [(3, 1), (0, 0)])
        flow = next(row for row in values['mautomate.flow'] if row['id'] == self.flow.id)
        self.assertEqual(flow['participant_count'], 1)

    def test_read_only_routes_on_a_replica(self):
        """ Served from the replica without a write: Odoo would log a retry on the primary if they wrote. """
        popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')
        # With a running A/B test, and a browser known to have sent forms: every query of the route runs.
        popup_test = self.env['mautomate.ab.test'].browse(popup.action_new_ab_test()['res_id'])
        popup_test.action_start()
        browser = self.new_browser_id()
        self.opener.cookies.set('mautomate_vid', browser)
        self.env.flush_all()
        with self.assertNoLogs('odoo.http', 'WARNING'):
            openapi = self.url_open('/mautomate/api/v1/openapi.json')
            popups = self.url_open('/mautomate/popup?path=/')
        self.assertEqual(openapi.status_code, 200)
        self.assertIn('/mautomate/api/v1/events', json.loads(openapi.text)['paths'])
        self.assertEqual(popups.status_code, 200)
        offered = json.loads(popups.text)['popups']
        self.assertIn(popup_test._ab_variant_for(browser).res_id, [row['id'] for row in offered])
        self.assertTrue(all(row['token'] for row in offered), "tokens signed for the browser, from the replica")

    def test_rpc_through_the_web_client(self):
        """ The Timeline tab's call, as the web client sends it. """
        self.authenticate('replica_marketer', 'replica_marketer')
        with self.assertNoLogs('odoo.http', 'WARNING'):
            data = self.make_jsonrpc_request('/web/dataset/call_kw/res.partner/mautomate_get_timeline_data', {
                'model': 'res.partner', 'method': 'mautomate_get_timeline_data', 'args': [[self.partner.id]],
                'kwargs': {'event_types': [], 'limit': 2}})
        self.assertEqual((data['total'], data['shown']), (8, 2))

    def test_pages_from_a_replica_are_not_logged(self):
        """ The home page and website pages (website.page, served by Odoo's fallback) are read-only requests: like
        website's own visitor tracking, their view is not logged there, without an error; a page served on the
        primary, such as a form's, is. """
        with self.assertNoLogs('odoo', 'WARNING'):
            self.assertEqual(self.url_open('/').status_code, 200)
            self.assertEqual(self.url_open('/contactus').status_code, 200)
        self.assertFalse(self.events([('event_type', '=', 'page_view')]))
        self.assertEqual(self.url_open('/mautomate/form/ebook').status_code, 200)
        self.assertIn('/mautomate/form/ebook', self.events([('event_type', '=', 'page_view')]).url)
