import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from unittest.mock import patch

import psycopg2
import requests

from odoo import SUPERUSER_ID, api, fields
from odoo.modules.registry import DummyRLock, Registry
from odoo.service.model import retrying
from odoo.tests import common, tagged
from odoo.tests.common import HOST
from odoo.tools import config

from ..models.mautomate_scoring import MautomateScoring
from .common import leave_database_as_found


@tagged('post_install', '-at_install')
class TestConcurrentIdentity(common.TransactionCase):
    """ Real concurrency: each thread is a request of its own, with its own database connection and
    transaction, retried by Odoo's `retrying` as the HTTP layer does; they start at one instant. """

    CLIENTS = 4

    def setUp(self):
        super().setUp()
        leave_database_as_found(self)

    def run_at_once(self, function):
        barrier = threading.Barrier(self.CLIENTS)
        results, errors = [], []

        def client():
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                barrier.wait()
                try:
                    results.append(retrying(partial(function, env), env))
                except Exception as error:
                    errors.append(error)

        threads = [threading.Thread(target=client) for _ in range(self.CLIENTS)]
        # The test runner holds the registry lock while tests run; lift it as Odoo's HttpCase does.
        with patch.object(Registry, '_lock', DummyRLock()):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        self.assertFalse(errors)
        return results

    def committed_contacts(self, email):
        with self.registry.cursor() as cr:
            cr.execute("SELECT id FROM res_partner WHERE email_normalized = %s", [email])
            return [row[0] for row in cr.fetchall()]

    def test_double_submit_creates_one_contact(self):
        for _trial in range(3):
            email = f'double.click.{uuid.uuid4().hex[:8]}@example.com'
            self.addCleanup(self.delete_contacts, email)
            results = self.run_at_once(partial(self.find_or_create, email))
            created = self.committed_contacts(email)
            self.assertEqual(len(created), 1, "one contact per normalised e-mail")
            self.assertEqual(results, created * self.CLIENTS, "every request got that contact")

    def test_a_request_begun_before_another_ended_restarts(self):
        """ A request whose snapshot predates another's new contact must not create a second one, though
        it takes the lock only after the other ended. """
        email = f'late.snapshot.{uuid.uuid4().hex[:8]}@example.com'
        self.addCleanup(self.delete_contacts, email)
        with self.registry.cursor() as late_cr:
            late_env = api.Environment(late_cr, SUPERUSER_ID, {})
            self.assertFalse(late_env['res.partner'].search([('email_normalized', '=', email)]))
            with self.registry.cursor() as cr:
                self.find_or_create(email, api.Environment(cr, SUPERUSER_ID, {}))
            with self.assertRaises(psycopg2.errors.SerializationFailure):
                self.find_or_create(email, late_env)
            late_cr.rollback()
        self.assertEqual(len(self.committed_contacts(email)), 1)

    @staticmethod
    def find_or_create(email, env):
        return env['res.partner']._mautomate_find_or_create_by_email({email.upper(): 'Double Click'})[email].id

    def delete_contacts(self, email):
        with self.registry.cursor() as cr:
            # Through the ORM: their messages go with them.
            api.Environment(cr, SUPERUSER_ID, {})['res.partner'].with_context(active_test=False).search(
                [('email_normalized', '=', email)]).unlink()

    def test_double_submit_of_a_form_files_one_lead(self):
        """ A known contact sends the e-book form twice at once: one lead, which both submits update. Its answers are known
        already, so that no write to the contact orders the two. """
        email = f'double.form.{uuid.uuid4().hex[:8]}@example.com'
        with self.registry.cursor() as cr:
            partner_id = api.Environment(cr, SUPERUSER_ID, {})['res.partner'].create(
                {'name': 'Frida Form', 'email': email, 'company_name': 'Double AB'}).id
        self.addCleanup(self.delete_form_rows, partner_id)
        lead_ids = self.run_at_once(partial(self.submit_ebook, email))
        with self.registry.cursor() as cr:
            cr.execute("SELECT id FROM crm_lead WHERE partner_id = %s", [partner_id])
            self.assertEqual([row[0] for row in cr.fetchall()], lead_ids[:1], "one lead, not one per click")
            self.assertEqual(len(set(lead_ids)), 1)
            cr.execute("SELECT count(*) FROM mautomate_event WHERE partner_id = %s AND event_type = 'form_submit'", [partner_id])
            self.assertEqual(cr.fetchone()[0], self.CLIENTS, "every submit is on the timeline")

    @staticmethod
    def submit_ebook(email, env):
        form = env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        questions = {question.field_name: question for question in form.question_ids}
        _partner, lead, _event = form._submit({questions['email']: email, questions['company_name']: 'Double AB'},
                                              {'ip': '10.0.0.1', 'consent': True})
        return lead.id

    def delete_form_rows(self, partner_id):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            cr.execute("DELETE FROM mautomate_event WHERE partner_id = %s", [partner_id])
            env['crm.lead'].with_context(active_test=False).search([('partner_id', '=', partner_id)]).unlink()
            env['res.partner'].browse(partner_id).unlink()


@tagged('post_install', '-at_install')
class TestDoubleSubmit(common.TransactionCase):
    """ A double click on a website form, as real HTTP requests to the running server: outside
    HttpCase's test mode each request has its own cursor and transaction, as in production. """

    CLIENTS = 4

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.registry.test_cr, "requests must get real cursors, not the test's")
        # The test runner holds the registry lock while tests run; lift it as Odoo's HttpCase does.
        self.patch(Registry, '_lock', DummyRLock())
        leave_database_as_found(self)
        self.emails = []
        self.forget_rate_counters()
        self.addCleanup(self.delete_committed_rows)

    def delete_committed_rows(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            leads = env['crm.lead'].with_context(active_test=False).search([('email_from', 'in', self.emails)])
            partners = env['res.partner'].with_context(active_test=False).search([('email_normalized', 'in', self.emails)])
            cr.execute("DELETE FROM mautomate_event WHERE lead_id = ANY(%s) OR partner_id = ANY(%s)", [leads.ids, partners.ids])
            env['website.visitor'].search(['|', ('lead_ids', 'in', leads.ids), ('partner_id', 'in', partners.ids)]).unlink()
            leads.unlink()
            partners.unlink()
        self.forget_rate_counters()

    def forget_rate_counters(self):
        """ Committed requests from this address count towards its per-minute limits: each test counts its own. """
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM mautomate_rate_limit WHERE ip IN ('127.0.0.1', '::1')")

    def test_double_click_on_the_lead_form(self):
        url = f'http://{HOST}:{config["http_port"]}/website/form/crm.lead'
        barrier = threading.Barrier(self.CLIENTS)

        def submit(email):
            browser = requests.Session()
            browser.headers['User-Agent'] = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36'
            barrier.wait(timeout=30)
            return browser.post(url, data={'contact_name': 'Dora Double', 'email_from': email, 'name': 'Quote'}, timeout=60)

        for _trial in range(5):
            email = f'dora.{uuid.uuid4().hex[:8]}@example.com'
            self.emails.append(email)
            with ThreadPoolExecutor(self.CLIENTS) as pool:
                responses = list(pool.map(submit, [email] * self.CLIENTS))
            self.assertEqual([response.status_code for response in responses], [200] * self.CLIENTS,
                             [response.text[:200] for response in responses])
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                contact = env['res.partner'].search([('email_normalized', '=', email)])
                leads = env['crm.lead'].search([('email_from', '=', email)])
                self.assertEqual(len(contact), 1, "one contact per normalised e-mail")
                self.assertEqual(len(leads), self.CLIENTS, "every submit still makes its lead")
                self.assertEqual(leads.partner_id, contact)

    def test_double_click_on_a_marketing_form_of_a_new_browser(self):
        """ The form page is the browser's first: its two submits at once both create its website visitor. The
        second waits for the first and restarts, logging no error. """
        base = f'http://{HOST}:{config["http_port"]}'
        slug = f'double-{uuid.uuid4().hex[:8]}'
        with self.registry.cursor() as cr:
            # A form of its own, without the robots' fill time: the demo e-book stays as it is.
            form = api.Environment(cr, SUPERUSER_ID, {}).ref('mautomate_marketing.mautomate_form_demo_ebook').copy(
                {'slug': slug, 'min_fill_seconds': 0, 'file': False})
            self.addCleanup(self.delete_form, form.id)
        for _trial in range(3):
            email = f'dan.{uuid.uuid4().hex[:8]}@example.com'
            self.emails.append(email)
            browser = requests.Session()
            browser.headers['User-Agent'] = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36'
            page = browser.get(f'{base}/mautomate/form/{slug}', timeout=60).text
            data = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1) for name in ('mautomate_token', 'csrf_token')}
            data.update(email=email, name='Dan Double', company_name='Double AB', consent='1')
            barrier = threading.Barrier(2)

            def submit(_index, browser=browser, data=data, barrier=barrier):
                clone = requests.Session()
                clone.headers.update(browser.headers)
                clone.cookies.update(browser.cookies)
                barrier.wait(timeout=30)
                return clone.post(f'{base}/mautomate/form/{slug}', data=data, timeout=60, allow_redirects=False)

            with self.assertNoLogs('odoo.sql_db', 'ERROR'), ThreadPoolExecutor(2) as pool:
                responses = list(pool.map(submit, range(2)))
            self.assertEqual([response.status_code for response in responses], [200, 200], [r.text[:200] for r in responses])
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                contact = env['res.partner'].search([('email_normalized', '=', email)])
                self.assertEqual(len(contact), 1)
                self.assertEqual(len(env['crm.lead'].search([('partner_id', '=', contact.id)])), 1, "one lead, which both submits update")

    def delete_form(self, form_id):
        with self.registry.cursor() as cr:
            api.Environment(cr, SUPERUSER_ID, {})['mautomate.form'].browse(form_id).unlink()


@tagged('post_install', '-at_install')
class TestScoringCronsTakeTurns(common.TransactionCase):
    """ The cron refreshing the queued people and the one recomputing every score update the same contacts and
    leads, each on a cron thread of its own with committed batches: they must take turns, and a batch taken
    again after a request's change is no error. Only the test's contact and lead are refreshed. """

    def setUp(self):
        super().setUp()
        self.patch(Registry, '_lock', DummyRLock())
        leave_database_as_found(self)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            cr.execute("SELECT COALESCE(max(id), 0) FROM ir_cron_trigger")
            self.last_trigger = cr.fetchone()[0]
            partner = env['res.partner'].create({'name': 'Tess Turns', 'email': f'tess.{uuid.uuid4().hex[:8]}@example.com'})
            lead = env['crm.lead'].create({'name': 'Turns', 'partner_id': partner.id})
            env['mautomate.score.entry'].create({'partner_id': partner.id, 'points': 10, 'date': fields.Datetime.now()})
            env['mautomate.scoring']._enqueue_refresh([partner.id])
            self.partner_id, self.lead_id = partner.id, lead.id
        self.addCleanup(self.delete_committed_rows)

    def delete_committed_rows(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM mautomate_event WHERE partner_id = %s OR lead_id = %s", [self.partner_id, self.lead_id])
            env = api.Environment(cr, SUPERUSER_ID, {})
            env['crm.lead'].browse(self.lead_id).unlink()
            env['res.partner'].browse(self.partner_id).unlink()

    def run_refresh_held(self, meanwhile):
        """ Run the refresh cron on a thread; when its batch has read the queue, run `meanwhile`, then let it go on.
        Returns the errors that escaped the cron. """
        refresh_people = MautomateScoring._refresh_people
        inside, go_on, errors = threading.Event(), threading.Event(), []

        def held(scoring, *args, **kwargs):
            if threading.current_thread().name == 'refresh' and not inside.is_set():
                inside.set()
                go_on.wait(timeout=60)
            return refresh_people(scoring, *args, **kwargs)

        def refresh():
            try:
                with self.registry.cursor() as cr:
                    api.Environment(cr, SUPERUSER_ID, {})['mautomate.scoring']._cron_refresh_queue(auto_commit=True)
            except Exception as error:  # reported by the caller's assertion
                errors.append(error)

        with patch.object(MautomateScoring, '_refresh_people', held):
            thread = threading.Thread(target=refresh, name='refresh')
            thread.start()
            try:
                self.assertTrue(inside.wait(timeout=60))
                meanwhile()
            finally:
                go_on.set()
                thread.join(timeout=120)
        return errors

    def committed(self, query, params):
        with self.registry.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchall()

    def test_recompute_waits_for_its_turn(self):
        """ The recompute starts while the refresh runs: it leaves the refresh alone and comes back shortly. """
        recompute_errors = []

        def recompute():
            try:
                with self.registry.cursor() as cr:
                    api.Environment(cr, SUPERUSER_ID, {})['mautomate.scoring']._cron_recompute()
            except Exception as error:  # reported by the assertion below
                recompute_errors.append(error)

        def recompute_meanwhile():
            thread = threading.Thread(target=recompute, name='recompute')
            thread.start()
            thread.join(timeout=120)

        with self.assertNoLogs('odoo.sql_db', 'ERROR'):
            errors = self.run_refresh_held(recompute_meanwhile)
        self.assertFalse(errors + recompute_errors)
        self.assertEqual(self.committed("SELECT mautomate_score FROM res_partner WHERE id = %s", [self.partner_id]), [(10,)])
        self.assertEqual(self.committed("SELECT mautomate_score FROM crm_lead WHERE id = %s", [self.lead_id]), [(10,)])
        self.assertFalse(self.committed("SELECT id FROM mautomate_score_queue WHERE partner_id = %s", [self.partner_id]))
        comes_back = self.committed("""
            SELECT t.call_at - (now() at time zone 'UTC') FROM ir_cron_trigger t JOIN ir_model_data d ON d.res_id = t.cron_id
             WHERE d.module = 'mautomate_marketing' AND d.name = 'ir_cron_mautomate_score_recompute' AND t.id > %s
        """, [self.last_trigger])
        self.assertEqual(len(comes_back), 1, "the recompute is due again")
        self.assertLess(comes_back[0][0].total_seconds(), 120)

    def test_a_batch_taken_again_logs_no_error(self):
        """ A request changes the contact after the refresh's batch began: the batch is taken again, which is expected,
        not an error. """
        def request_meanwhile():
            self.committed("UPDATE res_partner SET mautomate_score = 5 WHERE id = %s RETURNING id", [self.partner_id])

        with self.assertNoLogs('odoo.sql_db', 'ERROR'):
            errors = self.run_refresh_held(request_meanwhile)
        self.assertFalse(errors)
        self.assertEqual(self.committed("SELECT mautomate_score FROM res_partner WHERE id = %s", [self.partner_id]), [(10,)])
