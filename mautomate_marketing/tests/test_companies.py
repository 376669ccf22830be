import json
import re
import time

from odoo.exceptions import AccessError
from odoo.tests import common, tagged, users
from odoo.tools import config

from .common import MautomateCase, MautomateHttpCase
from .test_cta import journey_cta
from .test_forms import FormMixin

# Website B's host name: requests still connect to the test server on loopback, only their Host header names B.
HOST_B = 'b-site.mautomate.test'


class CompaniesMixin(FormMixin):
    """ Two companies, each with its marketer, flow and form; company B also has its own website. """

    @classmethod
    def setUpCompanies(cls):
        cls.company_a = cls.env.ref('base.main_company')
        cls.company_b = cls.env['res.company'].create({'name': 'Company B'})
        cls.website_b = cls.env['website'].create({'name': 'Website B', 'company_id': cls.company_b.id,
                                                   'domain': f'https://{HOST_B}'})
        new_user = common.new_test_user
        env = cls.env(context={**cls.env.context, 'no_reset_password': True, 'mail_create_nosubscribe': True})
        for login, company in (('mau_marketer_a', cls.company_a), ('mau_marketer_b', cls.company_b)):
            new_user(env, login, groups='mautomate_marketing.group_mautomate_manager,sales_team.group_sale_salesman_all_leads',
                     company_id=company.id, company_ids=company.ids)
        new_user(env, 'mau_marketer_ab', groups='mautomate_marketing.group_mautomate_manager',
                 company_id=cls.company_a.id, company_ids=(cls.company_a | cls.company_b).ids)
        ebook = cls.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        cls.form_a = ebook.copy({'slug': 'company-a-form', 'company_id': cls.company_a.id, 'min_fill_seconds': 0})
        cls.form_b = ebook.copy({'slug': 'company-b-form', 'company_id': cls.company_b.id, 'min_fill_seconds': 0})
        trigger = [(0, 0, {'trigger_type': 'event', 'event_type': 'form_submit'})]
        cls.flow_a = cls.make_flow(cls.company_a, trigger_ids=trigger, name='Flow A')
        cls.flow_b = cls.make_flow(cls.company_b, trigger_ids=trigger, name='Flow B')

    @classmethod
    def make_flow(cls, company, **vals):
        flow = cls.env['mautomate.flow'].create({'company_id': company.id, **vals})
        cls.env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'Points', 'kind': 'score', 'score_points': 5})
        flow.action_start()
        return flow


@tagged('post_install', '-at_install', 'security')
class TestCompanyRecords(CompaniesMixin, MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setUpCompanies()
        cls.rule_a = cls.env['mautomate.score.rule'].create({'name': 'Webinar (A)', 'event_type': 'custom', 'points': 10,
                                                              'company_id': cls.company_a.id})
        cls.rule_shared = cls.env['mautomate.score.rule'].create({'name': 'Webinar (all)', 'event_type': 'custom',
                                                                   'points': 1, 'company_id': False})
        cls.key_b = cls.env['mautomate.api.key'].create({'name': 'Shop B', 'company_id': cls.company_b.id})
        cls.lead_a = cls.env['crm.lead'].create({'name': 'Lead A', 'partner_id': cls.partner.id, 'company_id': cls.company_a.id})
        cls.lead_b = cls.env['crm.lead'].create({'name': 'Lead B', 'partner_id': cls.partner.id, 'company_id': cls.company_b.id})

    def test_records_default_to_the_current_company(self):
        for model in ('mautomate.flow', 'mautomate.score.rule', 'mautomate.form', 'mautomate.popup', 'mautomate.cta',
                      'mautomate.ab.test', 'mautomate.api.key'):
            self.assertEqual(self.env[model].with_company(self.company_b).default_get(['company_id']),
                             {'company_id': self.company_b.id}, model)

    def test_events_carry_their_api_key_lead_or_given_company(self):
        by_key = self.Event._ingest([{'event_type': 'custom', 'partner_id': self.partner.id, 'api_key_id': self.key_b.id,
                                      'company_id': self.company_a.id}])
        by_lead = self.Event._ingest([{'event_type': 'email_click', 'lead_id': self.lead_b.id, 'company_id': self.company_a.id}])
        given = self.Event._ingest([{'event_type': 'page_view', 'company_id': self.company_b.id}])
        none = self.Event._ingest([{'event_type': 'page_view'}])
        self.assertEqual((by_key | by_lead | given).company_id, self.company_b)
        self.assertFalse(none.company_id)

    def test_a_company_rule_scores_only_its_company_events(self):
        Entry, Scoring = self.env['mautomate.score.entry'], self.env['mautomate.scoring']
        event_b = self.Event._ingest([{'event_type': 'custom', 'partner_id': self.partner.id, 'api_key_id': self.key_b.id}])
        Scoring._cron_refresh_queue()
        self.assertEqual(Entry.search([('event_id', '=', event_b.id)]).rule_id, self.rule_shared,
                         "only the shared rule scores company B's event")
        event_a = self.Event._ingest([{'event_type': 'custom', 'partner_id': self.partner.id, 'company_id': self.company_a.id}])
        Scoring._cron_refresh_queue()
        self.assertEqual(Entry.search([('event_id', '=', event_a.id)]).rule_id, self.rule_a | self.rule_shared)
        # The full recompute awards the same.
        Scoring._recompute_all()
        self.assertEqual(Entry.search([('event_id', '=', event_b.id)]).rule_id, self.rule_shared)
        self.assertEqual(Entry.search([('event_id', '=', event_a.id)]).rule_id, self.rule_a | self.rule_shared)

    def test_a_company_flow_enrols_only_its_company_contacts_and_leads(self):
        Partner = self.env['res.partner']
        contact_a = Partner.create({'name': 'Of A', 'company_id': self.company_a.id})
        contact_b = Partner.create({'name': 'Of B', 'company_id': self.company_b.id})
        shared = Partner.create({'name': 'Of nobody'})
        self.flow_a.action_enroll((contact_a | contact_b | shared).ids)
        self.assertEqual(self.flow_a.participant_ids.partner_id, contact_a | shared)
        lead_flow = self.make_flow(self.company_a, name='Leads of A', target='lead')
        shared_lead = self.env['crm.lead'].create({'name': 'Lead of nobody', 'company_id': False})
        lead_flow.action_enroll((self.lead_a | self.lead_b | shared_lead).ids)
        self.assertEqual(lead_flow.participant_ids.lead_id, self.lead_a | shared_lead)

    def test_events_of_a_company_enrol_only_into_its_flows(self):
        self.Event._ingest([{'event_type': 'form_submit', 'partner_id': self.partner.id, 'company_id': self.company_b.id}])
        self.assertFalse(self.flow_a.participant_ids)
        self.assertEqual(self.flow_b.participant_ids.partner_id, self.partner)

    @users('mau_marketer_a', 'mau_marketer_b')
    def test_each_marketer_sees_and_changes_only_its_company_records(self):
        own, other = ('a', 'b') if self.env.user.login == 'mau_marketer_a' else ('b', 'a')
        own_flow, other_flow = getattr(self, f'flow_{own}'), getattr(self, f'flow_{other}')
        own_form, other_form = getattr(self, f'form_{own}'), getattr(self, f'form_{other}')
        Flow, Form = self.env['mautomate.flow'], self.env['mautomate.form']
        self.assertIn(own_flow, Flow.search([]))
        self.assertNotIn(other_flow, Flow.search([]))
        self.assertIn(own_form, Form.search([]))
        self.assertNotIn(other_form, Form.search([]))
        Flow.browse(own_flow.id).write({'kpi_target': 3})
        with self.assertRaises(AccessError):
            Flow.browse(other_flow.id).write({'kpi_target': 3})
        with self.assertRaises(AccessError):
            Form.browse(other_form.id).write({'name': 'Taken over'})
        self.assertTrue(other_flow.step_ids)
        self.assertFalse(self.env['mautomate.flow.step'].search([('flow_id', '=', other_flow.id)]), "nor the other's steps")
        events = self.env['mautomate.event'].sudo()._ingest([
            {'event_type': 'page_view', 'company_id': company.id} for company in (self.company_a, self.company_b)])
        visible = self.env['mautomate.event'].search([('id', 'in', events.ids)])
        self.assertEqual(visible.company_id, self.env.company)
        rules, keys = self.env['mautomate.score.rule'].search([]), self.env['mautomate.api.key'].search([])
        self.assertEqual((self.rule_a in rules, self.key_b in keys), (own == 'a', own == 'b'))
        self.assertIn(self.rule_shared, rules, "a shared rule is everyone's")

    @users('mau_marketer_ab')
    def test_a_marketer_sees_the_companies_selected_in_the_switcher(self):
        Flow = self.env['mautomate.flow']
        self.assertEqual(Flow.with_context(allowed_company_ids=self.company_a.ids).search(
            [('id', 'in', (self.flow_a | self.flow_b).ids)]), self.flow_a)
        self.assertEqual(Flow.with_context(allowed_company_ids=(self.company_a | self.company_b).ids).search(
            [('id', 'in', (self.flow_a | self.flow_b).ids)]), self.flow_a | self.flow_b)

    def test_backfill_gives_old_events_a_company(self):
        event = self.Event._ingest([{'event_type': 'email_click', 'lead_id': self.lead_b.id}])
        self.env.cr.execute("UPDATE mautomate_event SET company_id = NULL WHERE id = %s", [event.id])
        self.Event.invalidate_model(['company_id'])
        self.assertGreaterEqual(self.Event._backfill_company(), 1)
        self.assertEqual(event.company_id, self.company_b)


@tagged('post_install', '-at_install', 'security')
class TestCompanyWebsites(CompaniesMixin, MautomateHttpCase):
    """ A visitor of website B, as the browser reaches it: by its host name. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env['res.partner'].create({'name': 'Ann Prospect', 'email': 'ann@prospect.example.com'})
        cls.setUpCompanies()

    @staticmethod
    def hidden(name, html):
        return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)

    @staticmethod
    def host_b():
        return {'Host': f"{HOST_B}:{config['http_port']}"}

    def open_b(self, path, data=None, **kwargs):
        return self.url_open(path, data=data, headers=self.host_b(), **kwargs)

    def test_a_visitor_of_website_b_lands_only_in_company_b(self):
        self.assertEqual(self.open_b('/mautomate/form/company-a-form').status_code, 404, "company A's form is not on B")
        self.assertEqual(self.open_b('/contactus').status_code, 200)
        response = self.open_b('/mautomate/form/company-b-form')
        self.assertEqual(response.status_code, 200)
        page = response.text
        answers = {'email': 'visitor.b@example.com', 'name': 'Visitor of B'}
        submitted = self.open_b('/mautomate/form/company-b-form', data={
            'mautomate_token': self.hidden('mautomate_token', page), 'consent': '1',
            'csrf_token': self.hidden('csrf_token', page), **answers}, allow_redirects=False)
        self.assertLess(submitted.status_code, 400, submitted.text)
        beacon = self.open_b('/mautomate/track', data=json.dumps({'vid': 'b2' * 16, 'events': [
            {'type': 'page_view', 'url': 'https://b.example.com/', 'name': 'Home', 'ts': int(time.time() * 1000)}]}))
        self.assertEqual(beacon.status_code, 202)
        events = self.events()
        self.assertEqual(set(events.mapped('event_type')), {'page_view', 'form_view', 'form_submit'})
        self.assertEqual(events.company_id, self.company_b, "every event of website B is company B's")
        visitor = self.env['res.partner'].search([('email_normalized', '=', 'visitor.b@example.com')])
        self.assertTrue(visitor)
        self.assertEqual(self.flow_b.participant_ids.partner_id, visitor)
        self.assertFalse(self.flow_a.participant_ids, "company A's flow never takes website B's visitor")
        # Company A's form is served on A's website, its events are A's.
        self.assertEqual(self.url_open('/mautomate/form/company-a-form').status_code, 200)
        self.assertEqual((self.events() - events).company_id, self.company_a)

    def test_an_api_key_of_company_b_posts_company_b_events(self):
        key = self.env['mautomate.api.key'].create({'name': 'Shop B', 'company_id': self.company_b.id})
        token = key.action_generate_token()['context']['default_token']
        response = self.post_json('/mautomate/api/v1/events', {'email': 'api.b@example.com', 'name': 'Webinar attended'},
                                  headers={'Authorization': f'Bearer {token}'})
        self.assertEqual(response.status_code, 201, response.text)
        self.assertEqual(self.events().company_id, self.company_b)

    def test_calls_to_action_and_pop_ups_of_company_a_are_not_on_website_b(self):
        cta = journey_cta(self.env)
        popup = self.env['mautomate.popup'].create({'name': 'On every page of A', 'form_id': self.form_a.id})
        self.assertEqual(cta.company_id | popup.company_id, self.company_a)
        self.assertEqual(self.make_jsonrpc_request(f'/mautomate/cta/{cta.id}', {})['label'], 'Free e-book')
        self.assertEqual(self.make_jsonrpc_request(f'/mautomate/cta/{cta.id}', {}, headers=self.host_b()), {})
        no_tracking = {'X-Disable-Tracking': '1'}
        shown_on_a = json.loads(self.url_open('/mautomate/popup?path=/', headers=no_tracking).text)['popups']
        self.assertIn(popup.id, [shown['id'] for shown in shown_on_a])
        shown_on_b = json.loads(self.open_b('/mautomate/popup?path=/').text)['popups']
        self.assertNotIn(popup.id, [shown['id'] for shown in shown_on_b])
