import itertools
from datetime import timedelta

from odoo import fields, tools
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import MautomateCase, MautomateHttpCase

SITE = 'https://www.example.com'


def ingest_journey(env, partner):
    """ Three days ago a visit of three pages with a call to action and a form, then another visit
    an hour later; yesterday an e-mail opened. Returns the first visit's start. """
    browser = MautomateCase.new_browser_id()
    start = (fields.Datetime.now() - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)

    def at(minutes):
        return start + timedelta(minutes=minutes)
    env['mautomate.event']._ingest([{'partner_id': partner.id, 'source': 'tracker', 'anonymous_id': browser, **vals} for vals in [
        {'occurred_at': at(0), 'event_type': 'page_view', 'name': 'Home', 'url': f'{SITE}/'},
        {'occurred_at': at(2), 'event_type': 'page_view', 'name': 'Pricing', 'url': f'{SITE}/pricing'},
        {'occurred_at': at(5), 'event_type': 'cta_click', 'name': 'Book a demo', 'url': f'{SITE}/pricing'},
        {'occurred_at': at(6), 'event_type': 'page_view', 'name': 'References', 'url': f'{SITE}/references'},
        {'occurred_at': at(7), 'event_type': 'form_submit', 'name': 'Contact us', 'url': f'{SITE}/contact'},
        # More than 30 minutes later: a new visit of the same browser.
        {'occurred_at': at(60), 'event_type': 'page_view', 'name': 'Blog', 'url': f'{SITE}/blog'},
        {'occurred_at': at(61), 'event_type': 'page_view', 'url': f'{SITE}/careers'},
    ]])
    env['mautomate.event']._ingest([{
        'partner_id': partner.id, 'source': 'email', 'event_type': 'email_open', 'name': 'Our autumn offers',
        'occurred_at': fields.Datetime.now() - timedelta(days=1),
    }])
    return start


@tagged('post_install', '-at_install')
class TestTimelineData(MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start = ingest_journey(cls.env, cls.partner)
        cls.lead = cls.env['crm.lead'].create({'name': 'Ann wants a quote', 'partner_id': cls.partner.id})

    def timeline(self, record=None, **kwargs):
        return (record or self.partner).with_context(tz='UTC').mautomate_get_timeline_data(**kwargs)

    def test_events_grouped_by_day_and_visit(self):
        data = self.timeline()
        self.assertEqual((data['total'], data['count'], data['shown']), (8, 8, 8))
        self.assertEqual({row['type']: row['count'] for row in data['types']},
                         {'page_view': 5, 'cta_click': 1, 'form_submit': 1, 'email_open': 1})
        yesterday, visit_day = data['days']
        self.assertEqual(visit_day['date'], fields.Date.to_string(self.start.date()))
        self.assertEqual([entry['is_visit'] for entry in yesterday['entries']], [False], "an e-mail opened is no visit")
        later, first = visit_day['entries']
        self.assertEqual([event['title'] for event in later['events']], ['Blog', '/careers'],
                         "newest visit first, its events in the order they happened, a page without title by its path")
        self.assertEqual([event['title'] for event in first['events']], ['Home', 'Pricing', 'Book a demo', 'References', 'Contact us'])
        self.assertEqual([event['duration'] for event in first['events']], [120, 240, None, None, None],
                         "time on page is the time to the next page of the visit, unknown for the last one")
        self.assertEqual((first['page_count'], first['site'], first['duration']), (3, 'www.example.com', 7 * 60))
        self.assertEqual((first['start'], first['end']), (fields.Datetime.to_string(self.start),
                                                          fields.Datetime.to_string(self.start + timedelta(minutes=7))))

    def test_filter_by_type(self):
        data = self.timeline(event_types=['email_open', 'form_submit'])
        self.assertEqual((data['total'], data['count']), (8, 2))
        self.assertEqual(len(data['types']), 4, "every type stays offered as a filter")
        self.assertEqual([event['type'] for day in data['days'] for entry in day['entries'] for event in entry['events']],
                         ['email_open', 'form_submit'])
        self.assertEqual({dataset['type'] for dataset in data['chart']['datasets']}, {'email_open', 'form_submit'})
        with self.assertRaises(UserError):
            self.timeline(event_types=['page_view', 'no_such_type'])

    def test_limit(self):
        data = self.timeline(limit=2)
        self.assertEqual((data['count'], data['shown']), (8, 2))
        self.assertEqual(data['days'][0]['entries'][0]['events'][0]['title'], 'Our autumn offers')
        self.assertEqual(self.timeline(limit=10 ** 6)['shown'], 8, "a huge limit is capped, not refused")

    def test_chart_per_day_until_today(self):
        chart = self.timeline()['chart']
        self.assertEqual(chart['interval'], 'day')
        self.assertEqual(chart['buckets'][-1], fields.Date.to_string(fields.Date.today()))
        self.assertEqual(len(chart['buckets']), 14, "two weeks at least, every day even without events")
        by_type = {dataset['type']: dict(zip(chart['buckets'], dataset['data'], strict=True)) for dataset in chart['datasets']}
        self.assertEqual(by_type['page_view'][fields.Date.to_string(self.start.date())], 5)
        self.assertEqual(sum(by_type['page_view'].values()), 5)

    def test_chart_per_week_over_a_long_span(self):
        self.ingest(partner_id=self.partner.id, occurred_at=fields.Datetime.now() - timedelta(days=100), name='Old visit')
        chart = self.timeline()['chart']
        self.assertEqual(chart['interval'], 'week')
        weeks = [fields.Date.from_string(bucket) for bucket in chart['buckets']]
        self.assertEqual({later - earlier for earlier, later in itertools.pairwise(weeks)}, {timedelta(days=7)})
        self.assertLessEqual(weeks[-1], fields.Date.today())
        self.assertEqual(sum(sum(dataset['data']) for dataset in chart['datasets']), 9)
        self.assertEqual(self.timeline(event_types=['email_open'])['chart']['buckets'], chart['buckets'],
                         "the time axis stays put while filtering")

    def test_lead_and_empty_contact(self):
        self.assertEqual(self.timeline(self.lead)['total'], 8, "a lead shows its contact's events")
        empty = self.timeline(self.env['res.partner'].create({'name': 'Nobody Yet'}))
        self.assertEqual((empty['total'], empty['days'], empty['chart']['buckets']), (0, [], []))

    def test_tab_only_for_users_who_read_events(self):
        employee = new_test_user(self.env, 'timeline_employee', groups='base.group_user')
        salesman = new_test_user(self.env, 'timeline_salesman', groups='sales_team.group_sale_salesman')
        marketer = new_test_user(self.env, 'timeline_marketer', groups='mautomate_marketing.group_mautomate_user')
        form = self.env.ref('base.view_partner_form').id
        for user, shown in [(employee, False), (salesman, True), (marketer, True)]:
            arch = self.env['res.partner'].with_user(user).get_views([(form, 'form')])['views']['form']['arch']
            self.assertEqual('name="mautomate_timeline"' in arch, shown, user.login)
            if shown:
                self.assertEqual(self.timeline(self.partner.with_user(user))['total'], 8)
        with self.assertRaises(AccessError):
            self.timeline(self.partner.with_user(employee))


@tagged('post_install', '-at_install')
class TestReadableEvents(MautomateCase):

    def test_related_document_by_name(self):
        lead = self.env['crm.lead'].create({'name': 'Quote for 40 seats'})
        on_lead = self.ingest(event_type='form_submit', res_model='crm.lead', res_id=lead.id)
        sent_mail = self.env['mail.mail'].create({'subject': 'Contact us', 'email_to': 'sales@example.com'})
        on_sent_mail = self.ingest(event_type='form_submit', res_model='mail.mail', res_id=sent_mail.id)
        sent_mail.unlink()  # as Odoo does once a mail is sent
        self.assertRecordValues(on_lead + on_sent_mail, [
            {'res_model_name': 'Lead/Opportunity', 'related_record_name': 'Quote for 40 seats'},
            {'res_model_name': 'Outgoing Mails', 'related_record_name': False},
        ])
        marketer = new_test_user(self.env, 'readable_marketer', groups='mautomate_marketing.group_mautomate_user')
        self.assertFalse(on_lead.with_user(marketer).related_record_name, "no name of a record the user may not read")
        self.assertEqual(on_lead.with_user(marketer).res_model_name, 'Lead/Opportunity')

    def test_visitor_reads_as_a_person(self):
        anonymous = self.env['website.visitor'].create({'access_token': 'd' * 32, 'country_id': self.env.ref('base.be').id})
        known = self.env['website.visitor'].create({'access_token': str(self.partner.id)})
        events = self.ingest(visitor_id=anonymous.id) + self.ingest(visitor_id=known.id) + self.ingest()
        first_seen = tools.format_date(self.env, anonymous.create_date)
        self.assertEqual(events.mapped('visitor_label'), [
            f'Anonymous visitor from Belgium, first seen {first_seen}', 'Ann Prospect', False])


@tagged('post_install', '-at_install')
class TestTimelineTab(MautomateHttpCase):

    def test_timeline_tab_on_contact_and_lead(self):
        partner = self.env['res.partner'].create({'name': 'Tina Timeline', 'email': 'tina@timeline.example.com'})
        lead = self.env['crm.lead'].create({'name': 'Tina wants a demo', 'partner_id': partner.id})
        ingest_journey(self.env, partner)
        self.start_tour(f'/odoo/action-base.action_partner_form/{partner.id}', 'mautomate_timeline_tab', login='admin')
        self.start_tour(f'/odoo/action-crm.crm_lead_all_leads/{lead.id}', 'mautomate_timeline_tab', login='admin')
