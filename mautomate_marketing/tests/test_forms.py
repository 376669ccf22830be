import re
import time
from contextlib import contextmanager
from urllib.parse import quote

from odoo import SUPERUSER_ID, api, sql_db, tools
from odoo.exceptions import ValidationError
from odoo.tests import new_test_user, tagged

from .common import MautomateCase, MautomateHttpCase

FORM_URL = '/mautomate/form/ebook'


def partner_field(env, name):
    return env['ir.model.fields']._get('res.partner', name)


class FormMixin:

    def make_form(self, questions, **vals):
        """ questions: [(model, field, input_type, {extra})] """
        return self.env['mautomate.form'].create({
            'name': vals.pop('name', 'Test form'),
            'slug': vals.pop('slug', 'test-form'),
            'question_ids': [(0, 0, {
                'field_id': self.env['ir.model.fields']._get(model, field).id, 'input_type': input_type,
                'sequence': index, **(extra or {}),
            }) for index, (model, field, input_type, extra) in enumerate(questions)],
            **vals,
        })

    @staticmethod
    def wait_for_a_fresh_minute():
        """ Counters are per clock minute: a burst that straddles two minutes is counted in two. """
        if time.time() % 60 > 45:
            time.sleep(60 - time.time() % 60)

    def make_running_flow(self, **vals):
        flow = self.env['mautomate.flow'].create({'name': 'Form flow', **vals})
        self.env['mautomate.flow.step'].create({'flow_id': flow.id, 'name': 'Points', 'kind': 'score', 'score_points': 5})
        flow.action_start()
        return flow


@tagged('post_install', '-at_install')
class TestFormRules(FormMixin, MautomateCase):

    def setUp(self):
        super().setUp()
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')

    @contextmanager
    def refused(self, message):
        with self.assertRaisesRegex(ValidationError, message), self.env.cr.savepoint():
            yield

    def test_demo_ebook_form(self):
        self.assertEqual(self.ebook.slug, 'ebook')
        self.assertEqual(self.ebook.questions_per_page, 3)
        self.assertEqual(self.ebook.question_ids.mapped('field_name'),
                         ['email', 'name', 'company_name', 'function', 'city', 'country_id', 'phone'])

    def test_field_checks(self):
        email = ('res.partner', 'email', 'email', None)
        with self.refused("may not be set by a website visitor"):
            self.make_form([email, ('res.partner', 'user_id', 'text', None)])
        with self.refused("may not be set by a website visitor"):
            self.make_form([email, ('crm.lead', 'email_from', 'email', None)])
        with self.refused("is not writable"):
            self.make_form([email, ('res.partner', 'commercial_company_name', 'text', None)])
        with self.refused("links to other records"):
            self.make_form([email, ('res.partner', 'title', 'country', None)])
        with self.refused("only a field of the contact or of the lead"):
            self.make_form([email, ('res.users', 'login', 'text', None)])
        with self.refused("the field city is asked with: E-mail, Phone, Text"):
            self.make_form([email, ('res.partner', 'city', 'checkbox', None)])
        with self.refused("asks the field City twice"):
            self.make_form([email, ('res.partner', 'city', 'text', None), ('res.partner', 'city', 'text', None)])
        with self.refused("has no e-mail question"):
            self.make_form([('res.partner', 'city', 'text', None)])
        with self.refused("fields of type html cannot be asked"):
            self.make_form([email, ('crm.lead', 'description', 'textarea', None)])
        form = self.make_form([email, ('res.partner', 'city', 'text', None), ('crm.lead', 'referred', 'text', None)])
        self.assertEqual(form.question_ids.mapped('label'), ['Email', 'City', 'Referred By'])

    def test_a_question_is_asked_as_its_field_is(self):
        """ Without an input type given (an import, another module, the editor's new line), the field decides it. """
        fields_ = self.env['ir.model.fields']
        form = self.env['mautomate.form'].create({'name': 'Asked as', 'slug': 'asked-as',
                                                  'question_ids': [(0, 0, {'field_id': fields_._get('res.partner', 'email').id})]})
        self.assertEqual(form.question_ids.input_type, 'email')
        for model, name, expected in (('res.partner', 'phone', 'tel'),
                                      ('res.partner', 'mobile', 'tel'), ('res.partner', 'city', 'text'),
                                      ('res.partner', 'country_id', 'country'), ('res.partner', 'function', 'text')):
            question = self.env['mautomate.form.question'].create({'form_id': form.id, 'field_id': fields_._get(model, name).id})
            self.assertEqual(question.input_type, expected, name)

    def test_form_settings_checks(self):
        email = ('res.partner', 'email', 'email', None)
        with self.refused("may only hold lower-case letters"):
            self.make_form([email], slug='E Book!')
        with self.refused("thank-you page is a web address"):
            self.make_form([email], thanks_url='javascript:alert(1)')
        with self.refused("at least one question"):
            self.make_form([email], questions_per_page=0)
        self.assertEqual(self.make_form([email], slug=False, name='Webinar: Spring 2027').slug, 'webinar-spring-2027')
        with self.assertNoLogs('odoo.sql_db', 'ERROR'):
            with self.refused("Another form has this address"):
                self.make_form([email], slug='ebook')
            with self.refused("Another form has this address"):
                self.make_form([email], slug='price-list').slug = 'ebook'
        copy = self.ebook.copy()
        self.assertRecordValues(copy, [{'slug': 'free-e-book-the-marketing-automation-checklist-copy'}])
        self.assertEqual(copy.question_ids.mapped('field_name'), self.ebook.question_ids.mapped('field_name'))
        self.assertEqual(self.ebook.copy().slug, 'free-e-book-the-marketing-automation-checklist-copy-2')

    def test_questions_skip_what_is_known(self):
        questions = self.ebook.question_ids
        names = lambda partner: self.ebook._questions_to_ask(partner, self.env['crm.lead']).mapped('field_name')  # noqa: E731
        self.assertEqual(names(self.env['res.partner']), ['email', 'name', 'company_name'])
        known = self.env['res.partner'].create({'name': 'Kim', 'email': 'kim@example.com', 'company_name': 'Kim AB',
                                                'city': 'Lund'})
        self.assertEqual(names(known), ['email', 'function', 'country_id'])
        questions.filtered(lambda question: question.field_name == 'phone').always_ask = True
        self.assertEqual(names(known), ['email', 'function', 'phone'])
        # A contact created from an e-mail alone is named after it: its name is still to ask.
        self.assertEqual(names(self.env['res.partner'].create({'name': 'new@example.com', 'email': 'new@example.com'})),
                         ['email', 'name', 'phone'])

    def test_submit_fills_only_empty_fields_and_reuses_the_open_lead(self):
        questions = {question.field_name: question for question in self.ebook.question_ids}
        known = self.env['res.partner'].create({'name': 'Kim Known', 'email': 'kim@example.com', 'city': 'Malmö'})
        origin = {'ip': '192.0.2.1', 'url': 'https://example.com/mautomate/form/ebook', 'consent': True}
        partner, lead, event = self.ebook._submit({questions['email']: 'kim@example.com', questions['name']: 'Kim Other',
                                                   questions['city']: 'Lund', questions['function']: 'CTO'}, origin)
        self.assertEqual(partner, known)
        self.assertRecordValues(known, [{'name': 'Kim Known', 'city': 'Malmö', 'function': 'CTO'}])
        self.assertRecordValues(lead, [{'partner_id': known.id, 'contact_name': 'Kim Other', 'city': 'Lund',
                                        'function': 'CTO', 'tag_ids': self.ebook.lead_tag_ids.ids}])
        self.assertIn('Lund (Malmö)', lead.message_ids[0].body)
        self.assertRecordValues(event, [{'event_type': 'form_submit', 'partner_id': known.id, 'lead_id': lead.id,
                                         'res_model': 'mautomate.form', 'res_id': self.ebook.id}])
        self.assertEqual(event.payload['differing'], ['city', 'name'])
        self.assertEqual(event.payload['answers']['city'], 'Lund')
        consent = self.env['mautomate.consent'].search([('partner_id', '=', known.id)])
        self.assertRecordValues(consent, [{'form_id': self.ebook.id, 'ip_address': '192.0.2.1', 'state': 'confirmed',
                                           'text': self.ebook.consent_text}])
        self.ebook.double_optin = True
        _partner, again, _event = self.ebook._submit({questions['email']: 'KIM@example.com',
                                                      questions['phone']: '+46 70 000 00 00'}, origin)
        self.assertEqual(again, lead, "the contact's open lead is updated, not a second one created")
        self.assertEqual(known.phone, '+46 70 000 00 00')
        self.assertEqual(self.env['mautomate.consent'].search([('partner_id', '=', known.id)], limit=1).state, 'pending')

    def test_the_company_or_an_employee_email_names_no_contact(self):
        self.ebook.flow_ids = self.make_running_flow()
        questions = {question.field_name: question for question in self.ebook.question_ids}
        company = self.env.company.partner_id
        employee = self.env.ref('base.user_demo').partner_id
        # The browser it is sent from was known as someone else: the submit is not theirs either.
        browser_id = self.new_browser_id()
        someone = self.env['res.partner'].create({'name': 'Someone', 'email': 'someone@example.com'})
        self.env['mautomate.event']._ingest([{'event_type': 'page_view', 'anonymous_id': browser_id, 'partner_id': someone.id}])
        for contact in (company, employee):
            before = contact.read(['name', 'city', 'function'])
            partner, lead, event = self.ebook._submit({questions['email']: contact.email, questions['name']: 'Prankster',
                                                       questions['city']: 'Nowhere', questions['function']: 'Joker'},
                                                      {'consent': True, 'browser_id': browser_id})
            self.assertFalse(partner)
            self.assertEqual(contact.read(['name', 'city', 'function']), before)
            self.assertRecordValues(lead, [{'partner_id': False, 'contact_name': 'Prankster', 'email_from': contact.email_normalized}])
            self.assertFalse(event.partner_id)
        self.assertFalse(self.env['mautomate.consent'].search([('partner_id', 'in', (company | employee).ids)]))
        self.assertFalse(self.ebook.flow_ids.participant_ids)
        # The employee's own submit, logged in, is theirs (their contact is still not written).
        partner, _lead, event = self.ebook._submit({questions['email']: employee.email, questions['city']: 'Nowhere'},
                                                   {'user_partner': employee})
        self.assertEqual(event.partner_id, employee)
        self.assertNotEqual(employee.city, 'Nowhere')

    def test_lead_questions_are_asked_of_the_open_lead(self):
        form = self.make_form([('res.partner', 'email', 'email', None), ('crm.lead', 'referred', 'text', None),
                               ('res.partner', 'city', 'text', None)], questions_per_page=2)
        email_question, referred_question, _city = form.question_ids
        self.assertEqual(form._questions_to_ask(self.partner, form._open_lead(self.partner)), email_question | referred_question)
        _partner, lead, event = form._submit({email_question: self.partner.email, referred_question: 'A friend'}, {})
        self.assertRecordValues(lead, [{'partner_id': self.partner.id, 'referred': 'A friend', 'email_from': self.partner.email}])
        self.assertEqual(event.payload['answers'], {'email': self.partner.email, 'lead_referred': 'A friend'})
        self.assertEqual(form._questions_to_ask(self.partner, form._open_lead(self.partner)).mapped('field_name'), ['email', 'city'])
        form.create_lead = False
        _partner, no_lead, event = form._submit({email_question: 'nolead@example.com'}, {})
        self.assertFalse(no_lead)
        self.assertFalse(event.lead_id)

    def test_submit_starts_the_form_flows_and_form_submit_triggers(self):
        chosen = self.make_running_flow()
        triggered = self.make_running_flow(trigger_ids=[(0, 0, {'trigger_type': 'event', 'event_type': 'form_submit'})])
        stopped = self.env['mautomate.flow'].create({'name': 'Not running'})
        self.ebook.flow_ids = chosen | stopped
        email_question = self.ebook.question_ids[0]
        partner, lead, _event = self.ebook._submit({email_question: 'flow@example.com'}, {})
        self.assertRecordValues(chosen.participant_ids, [{'partner_id': partner.id, 'lead_id': lead.id}])
        self.assertEqual(triggered.participant_ids.partner_id, partner)
        self.assertFalse(stopped.participant_ids)

    def test_rate_limit_is_shared_by_connections(self):
        """ Two workers are two database connections: each counts its own requests, both read the sum. """
        ip = '192.0.2.77'
        limit = self.env['mautomate.rate.limit']._get_limit('form')
        self.wait_for_a_fresh_minute()
        first_cr, second_cr = sql_db.db_connect(self.env.cr.dbname).cursor(), sql_db.db_connect(self.env.cr.dbname).cursor()
        try:
            first = api.Environment(first_cr, SUPERUSER_ID, {})['mautomate.rate.limit']
            second = api.Environment(second_cr, SUPERUSER_ID, {})['mautomate.rate.limit']
            for _hit in range(limit - 1):
                self.assertFalse(first._hit('form', ip))
            first_cr.commit()
            self.assertFalse(second._hit('form', ip), "the last request within the limit")
            second_cr.commit()
            self.assertTrue(first._hit('form', ip), "over the limit, counted by both connections")
            self.assertTrue(second._hit('form', ip))
            self.assertFalse(second._hit('form', '192.0.2.78'), "another address has its own count")
        finally:
            for cr in (first_cr, second_cr):
                cr.rollback()
            first_cr.execute("DELETE FROM mautomate_rate_limit WHERE ip LIKE '192.0.2.7%%'")
            first_cr.commit()
            first_cr.close()
            second_cr.close()


@tagged('post_install', '-at_install')
class TestFormPages(FormMixin, MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        # Robots are stopped by the fill time: its own test waits for it, the others do not.
        self.ebook.min_fill_seconds = 0
        self.page = None

    def open_form(self, url=FORM_URL):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, response.text)
        self.page = response.text
        return self.asked(response.text)

    @staticmethod
    def asked(html):
        return re.findall(r'data-name="([a-z_]+)"', html)

    def hidden(self, name, html=None):
        match = re.search(rf'name="{name}" value="([^"]*)"', html or self.page)
        return match.group(1) if match else None

    def submit(self, url=FORM_URL, csrf=True, **answers):
        data = {'mautomate_token': self.hidden('mautomate_token'), 'consent': '1', **answers}
        if csrf:
            data['csrf_token'] = self.hidden('csrf_token')
        return self.url_open(url, data=data, allow_redirects=False)

    def contact(self, email):
        return self.env['res.partner'].search([('email_normalized', '=', email)])

    def test_progressive_profiling_of_one_browser(self):
        submits_before = self.ebook.submit_count
        self.url_open('/')
        self.assertEqual(self.open_form(), ['email', 'name', 'company_name', 'consent'])
        self.assertIn('I agree to receive the e-book', self.page)
        response = self.submit(email='Anna@Example.com', name='Anna Andersson', company_name='Acme AB')
        self.assertEqual(response.status_code, 200, response.text)
        self.assertIn('Your e-book is ready', response.text)
        anna = self.contact('anna@example.com')
        self.assertRecordValues(anna, [{'name': 'Anna Andersson', 'company_name': 'Acme AB', 'email': 'anna@example.com'}])

        # The same browser, not logged in: the next questions, and nothing it told before.
        self.assertEqual(self.open_form(), ['email', 'function', 'city', 'consent'])
        for known in ('anna@example.com', 'Anna@Example.com', 'Anna Andersson', 'Acme AB'):
            self.assertNotIn(known, self.page)
        self.assertEqual(self.submit(email='anna@example.com', function='Buyer', city='Göteborg').status_code, 200)
        sweden = self.env.ref('base.se')
        self.assertEqual(self.open_form(), ['email', 'country_id', 'phone', 'consent'])
        self.assertEqual(self.submit(email='anna@example.com', country_id=str(sweden.id), phone='+46 31 123 45').status_code, 200)
        self.assertEqual(self.open_form(), ['email', 'consent'], "all answered: the e-mail only")

        self.assertRecordValues(anna, [{'name': 'Anna Andersson', 'company_name': 'Acme AB', 'function': 'Buyer',
                                        'city': 'Göteborg', 'country_id': sweden.id, 'phone': '+46 31 123 45'}])
        lead = self.env['crm.lead'].search([('partner_id', '=', anna.id)])
        self.assertEqual(len(lead), 1, "one lead, updated by each submit")
        self.assertRecordValues(lead, [{'contact_name': 'Anna Andersson', 'partner_name': 'Acme AB', 'function': 'Buyer',
                                        'city': 'Göteborg', 'phone': '+46 31 123 45'}])
        submits = self.events([('event_type', '=', 'form_submit')])
        self.assertEqual(len(submits), 3)
        self.assertEqual(submits.partner_id, anna)
        self.assertEqual(submits[0].payload['answers'], {'email': 'anna@example.com', 'country_id': 'SE', 'phone': '+46 31 123 45'})
        views = self.events([('event_type', '=', 'page_view')])
        self.assertIn('/mautomate/form/ebook', views[-2].url, "the form page is a tracked page")
        self.assertEqual(views.partner_id, anna, "the browser's earlier pages are hers")
        self.assertEqual(len(self.env['mautomate.consent'].search([('partner_id', '=', anna.id)])), 3)
        self.ebook.invalidate_recordset(['submit_count'])
        self.assertEqual(self.ebook.submit_count, submits_before + 3)

    def test_logged_in_user_sees_own_values_only(self):
        portal = self.env.ref('base.demo_user0').partner_id
        portal.write({'email': 'portal@example.com', 'company_name': False})
        self.authenticate('portal', 'portal')
        self.assertEqual(self.open_form(), ['email', 'company_name', 'function', 'consent'])
        self.assertIn('value="portal@example.com"', self.page)
        self.assertEqual(self.submit(email='portal@example.com', company_name='Portal AB').status_code, 200)
        self.assertEqual(portal.company_name, 'Portal AB')

    def test_file_is_delivered_by_a_signed_expiring_link(self):
        self.open_form()
        response = self.submit(email='dl@example.com', name='Dee Loader')
        link = re.search(r'href="(/mautomate/form/ebook/file/[^"]+)"', response.text).group(1)
        download = self.url_open(link)
        self.assertEqual(download.status_code, 200)
        self.assertIn(b'The Marketing Automation Checklist', download.content)
        self.assertIn('attachment', download.headers['Content-Disposition'])
        self.assertEqual(self.events([('event_type', '=', 'download')]).partner_id, self.contact('dl@example.com'))
        self.assertEqual(self.url_open(link[:-4] + 'abcd').status_code, 404, "a forged signature")
        partner_id = self.contact('dl@example.com').id
        expired = int(time.time()) - 1
        signature = tools.hmac(self.env(su=True), 'mautomate_form_file', (self.ebook.id, partner_id, expired))
        self.assertEqual(self.url_open(f'/mautomate/form/ebook/file/{partner_id}/{expired}/{signature}').status_code, 404)

    def test_crafted_fields_change_nothing(self):
        """ Only the questions of the rendered form are read: ownership and type fields are ignored. """
        company = self.env['res.partner'].create({'name': 'Target Co', 'is_company': True})
        # The lead gets the website's team, not the one the request names.
        website_team = self.env['crm.team'].create({'name': 'Website Team'})
        self.env.ref('website.default_website').crm_default_team_id = website_team
        self.open_form()
        response = self.submit(email='crafty@example.com', name='Crafty', user_id='2', is_company='1', type='invoice',
                               company_id=str(self.env.company.id), partner_id=str(company.id), parent_id=str(company.id),
                               city='Unasked City', lead_user_id='2', lead_type='opportunity', lead_team_id='1')
        self.assertEqual(response.status_code, 200, response.text)
        crafty = self.contact('crafty@example.com')
        self.assertRecordValues(crafty, [{'name': 'Crafty', 'is_company': False, 'type': 'contact', 'parent_id': False,
                                          'company_id': False, 'city': False, 'user_ids': []}])
        lead = self.env['crm.lead'].search([('partner_id', '=', crafty.id)])
        self.assertRecordValues(lead, [{'user_id': False, 'team_id': website_team.id, 'city': False}])
        self.assertEqual(set(self.events([('event_type', '=', 'form_submit')]).payload['answers']), {'email', 'name'})

    def test_lead_gets_the_websites_team_and_salesperson(self):
        """ As website_crm gives a website form's lead: the website's team when the form names none, and the
        website's salesperson. """
        seller = new_test_user(self.env, 'form_web_seller', groups='sales_team.group_sale_salesman', name='Web Seller')
        web_team, form_team = self.env['crm.team'].create([{'name': 'Web Team', 'use_leads': False},
                                                           {'name': 'Form Team', 'use_leads': True}])
        self.env.ref('website.default_website').write({'crm_default_team_id': web_team.id,
                                                       'crm_default_user_id': seller.id})
        self.open_form()
        self.assertEqual(self.submit(email='webteam@example.com', name='Web Team Lead').status_code, 200)
        lead = self.env['crm.lead'].search([('partner_id', '=', self.contact('webteam@example.com').id)])
        self.assertRecordValues(lead, [{'team_id': web_team.id, 'user_id': seller.id, 'type': 'opportunity'}])
        self.ebook.lead_team_id = form_team
        self.open_form()
        self.assertEqual(self.submit(email='formteam@example.com', name='Form Team Lead').status_code, 200)
        lead = self.env['crm.lead'].search([('partner_id', '=', self.contact('formteam@example.com').id)])
        self.assertRecordValues(lead, [{'team_id': form_team.id, 'user_id': seller.id, 'type': 'lead'}])

    def test_someone_elses_email_keeps_their_values(self):
        known = self.env['res.partner'].create({'name': 'Known Customer', 'email': 'known@example.com',
                                                'company_name': 'Real AB'})
        self.open_form()
        self.assertEqual(self.submit(email='known@example.com', name='Impostor', company_name='Fake AB').status_code, 200)
        self.assertRecordValues(known, [{'name': 'Known Customer', 'company_name': 'Real AB'}])
        lead = self.env['crm.lead'].search([('partner_id', '=', known.id)])
        self.assertRecordValues(lead, [{'contact_name': 'Impostor', 'partner_name': 'Fake AB', 'email_from': 'known@example.com'}])
        self.assertEqual(self.events([('event_type', '=', 'form_submit')]).payload['differing'], ['company_name', 'name'])

    def test_missing_csrf_token_is_refused(self):
        self.open_form()
        response = self.submit(csrf=False, email='nocsrf@example.com', name='No Token')
        self.assertEqual(response.status_code, 400, "Odoo's own CSRF check refuses it")
        self.assertFalse(self.contact('nocsrf@example.com'))

    def test_honeypot_gets_a_thank_you_and_stores_nothing(self):
        self.open_form()
        response = self.submit(email='robot@example.com', name='Robot', homepage='https://spam.example.com')
        self.assertEqual(response.status_code, 200)
        self.assertIn('Your e-book is ready', response.text)
        self.assertNotIn('/file/', response.text)
        self.assertFalse(self.contact('robot@example.com'))
        self.assertFalse(self.events([('event_type', '=', 'form_submit')]))

    def test_too_fast_is_refused(self):
        self.assertEqual(self.env['mautomate.form'].default_get(['min_fill_seconds']), {'min_fill_seconds': 2})
        # Ten minutes: however slow this machine, the answers come back sooner.
        self.ebook.min_fill_seconds = 600
        self.open_form()
        response = self.submit(email='fast@example.com', name='Speedy')
        self.assertEqual(response.status_code, 400)
        self.assertIn('sent too quickly', response.text)
        self.assertIn('value="Speedy"', response.text, "what was typed is kept")
        self.assertFalse(self.contact('fast@example.com'))
        # The same answers, from a form rendered long enough ago, are taken.
        questions = self.ebook._questions_to_ask(self.env['res.partner'], self.env['crm.lead'])
        self.page = self.page.replace(self.hidden('mautomate_token'), self.ebook._sign_token(int(time.time()) - 601, questions))
        self.assertEqual(self.submit(email='fast@example.com', name='Speedy').status_code, 200)
        self.assertTrue(self.contact('fast@example.com'))
        self.page = self.page.replace(self.hidden('mautomate_token'), self.hidden('mautomate_token') + '0')
        self.assertIn('This form has expired', self.submit(email='forged@example.com', name='Forged').text)

    def test_invalid_answers_are_shown_next_to_their_field(self):
        self.make_form([
            ('res.partner', 'email', 'email', {'required': True}),
            ('res.partner', 'name', 'text', {'required': True}),
            ('res.partner', 'phone', 'tel', None),
            ('res.partner', 'country_id', 'country', None),
            ('crm.lead', 'referred', 'text', None),
            ('res.partner', 'mobile', 'tel', None),
        ], slug='checks', questions_per_page=6, min_fill_seconds=0)
        self.open_form('/mautomate/form/checks')
        response = self.submit('/mautomate/form/checks', email='not-an-email', name='<script>alert(1)</script>' + 'x' * 300,
                               phone='call me', country_id='999999', lead_referred='ok', mobile='+46 70 1')
        self.assertEqual(response.status_code, 400)
        html = response.text
        errors = dict(re.findall(r'data-name="([a-z_]+)".*?invalid-feedback d-block">([^<]+)<', html, re.S))
        self.assertEqual(errors, {'email': 'Enter a valid e-mail address.', 'name': 'At most 256 characters.',
                                  'phone': 'Enter a valid phone number.', 'country_id': 'Choose one of the options.'})
        self.assertIn('&lt;script&gt;alert(1)&lt;/script&gt;', html, "typed text is shown back escaped")
        self.assertNotIn('<script>alert(1)', html)
        self.assertFalse(self.events([('event_type', '=', 'form_submit')]))
        response = self.submit('/mautomate/form/checks', email='', name='Ok')
        self.assertIn('This field is required.', response.text)
        self.assertEqual(self.submit('/mautomate/form/checks', email='big@example.com', name='x' * 70000).status_code, 413,
                         "a body past the form's limit is refused unread")
        self.assertFalse(self.contact('big@example.com'))

    def test_a_new_campaign_of_the_landing_page_reaches_the_submit(self):
        """ The visitor lands with a campaign the database does not know yet: Odoo makes it for the lead, and the
        submit event gets it too. """
        self.open_form(FORM_URL + '?utm_campaign=Brand%20New%20Campaign')
        response = self.submit(email='nina@example.com', name='Nina New', company_name='New AB')
        self.assertEqual(response.status_code, 200, response.text[:300])
        campaign = self.env['utm.campaign'].search([('name', '=', 'Brand New Campaign')])
        self.assertEqual(len(campaign), 1)
        nina = self.contact('nina@example.com')
        self.assertEqual(self.env['crm.lead'].search([('partner_id', '=', nina.id)]).campaign_id, campaign)
        self.assertEqual(self.events([('event_type', '=', 'form_submit'), ('partner_id', '=', nina.id)]).campaign_id, campaign)

    def test_unreadable_characters_are_refused(self):
        """ Bytes that are not UTF-8 (read as U+FFFD) and NUL give a message next to the field, not a contact. """
        self.open_form()
        tokens = {name: quote(self.hidden(name), safe='') for name in ('mautomate_token', 'csrf_token')}
        for email, name in (('%FF%FE%40example.com', 'Bytes'), ('nul%00%40example.com', 'Nul'), ('ok%40example.com', 'Nul%00')):
            body = (f"mautomate_token={tokens['mautomate_token']}&csrf_token={tokens['csrf_token']}&consent=1"
                    f"&email={email}&name={name}&company_name=Unreadable")
            response = self.url_open(FORM_URL, data=body.encode(), allow_redirects=False,
                                     headers={'Content-Type': 'application/x-www-form-urlencoded'})
            self.assertEqual(response.status_code, 400, response.text[:300])
            self.assertIn('could not be read', response.text)
        self.assertFalse(self.env['res.partner'].search([('company_name', '=', 'Unreadable')]))

    def test_rate_limit_answers_429(self):
        # The requests share the test's transaction, hence its now(): one minute, whatever the clock says.
        self.env['ir.config_parameter'].set_param('mautomate_marketing.rate_limit_form', 2)
        self.open_form()
        for index in range(2):
            self.assertEqual(self.submit(email=f'rate{index}@example.com', name='Rate').status_code, 200)
        response = self.submit(email='rate2@example.com', name='Rate')
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.headers['Retry-After'], '60')
        self.assertIn('Too many forms were sent from your network', response.text)
        self.assertFalse(self.contact('rate2@example.com'))

        self.env['ir.config_parameter'].set_param('mautomate_marketing.rate_limit_track', 1)
        beacon = {'vid': self.new_browser_id(), 'events': [{'type': 'page_view', 'url': 'https://shop.example.com/'}]}
        self.assertEqual(self.post_json('/mautomate/track', beacon).status_code, 202)
        response = self.post_json('/mautomate/track', beacon)
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.json(), {'error': 'too many requests from this address: wait a minute'})

    def test_unknown_or_archived_form_is_not_found(self):
        self.assertEqual(self.url_open('/mautomate/form/nope').status_code, 404)
        self.ebook.active = False
        self.assertEqual(self.url_open(FORM_URL).status_code, 404)
