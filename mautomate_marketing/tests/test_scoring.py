from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import common, tagged, users
from odoo.tools import SQL, mute_logger

from .common import MautomateCase


class ScoringCase(MautomateCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Rule = cls.env['mautomate.score.rule']
        cls.Scoring = cls.env['mautomate.scoring']
        cls.Entry = cls.env['mautomate.score.entry']
        # The demo's rules would score these tests' events too.
        cls.Rule.search([]).action_archive()
        cls.Scoring._cron_recompute()
        # The demo's events still queued would be awarded by these tests' rules at their first refresh.
        cls.Scoring._cron_refresh_queue()
        cls.set_params(score_half_life=0)

    def setUp(self):
        super().setUp()
        # What the refresh cron does within a second of an ingest, done at once (see test_refresh_runs_in_the_cron).
        scoring_class = type(self.Scoring)
        enqueued = self.enqueued_origin = scoring_class._enqueued

        def enqueued_and_refreshed(scoring, *args, **kwargs):
            enqueued(scoring, *args, **kwargs)
            scoring._cron_refresh_queue()

        self.patch(scoring_class, '_enqueued', enqueued_and_refreshed)

    @classmethod
    def set_params(cls, **values):
        for key, value in values.items():
            cls.env['ir.config_parameter'].sudo().set_param(f'mautomate_marketing.{key}', value)

    def behaviour(self, points=10, **vals):
        return self.Rule.create({'name': vals.pop('name', f'Rule {points}'), 'rule_type': 'behaviour', 'points': points, **vals})

    def fit(self, points, domain):
        return self.Rule.create({'name': f'Fit {points}', 'rule_type': 'fit', 'points': points, 'domain': repr(domain)})

    def page(self, partner, url, days_ago=0, **vals):
        return self.Event._ingest([{'event_type': 'page_view', 'partner_id': partner.id, 'url': url,
                                    'occurred_at': fields.Datetime.now() - timedelta(days=days_ago), **vals}])


@tagged('post_install', '-at_install')
class TestScoreRules(ScoringCase):

    def test_url_patterns_match_path_and_query_or_the_whole_url(self):
        self.behaviour(10, name='Pricing', event_type='page_view', url_pattern='/pricing*')
        self.behaviour(5, name='Shop', event_type='page_view', url_pattern='https://shop.example.com/*')
        self.behaviour(3, name='Exact', event_type='page_view', url_pattern='/contactus')
        for url in ('https://www.example.com/pricing', 'https://www.example.com/pricing?plan=pro',
                    'https://other.example.org/Pricing/enterprise#top', 'https://www.example.com/about',
                    'https://www.example.com/blog/pricing', 'https://shop.example.com/cart',
                    'https://www.example.com/shop.example.com/', 'https://www.example.com/contactus?x=1',
                    'https://www.example.com/contactus-now'):
            self.page(self.partner, url)
        entries = self.Entry.search([('partner_id', '=', self.partner.id)])
        self.assertEqual(sorted(entries.mapped('event_url')), sorted([
            'https://www.example.com/pricing', 'https://www.example.com/pricing?plan=pro',
            'https://other.example.org/Pricing/enterprise#top', 'https://shop.example.com/cart',
            'https://www.example.com/contactus?x=1']))
        self.assertEqual(self.partner.mautomate_score, 3 * 10 + 5 + 3)

    def test_event_name_pattern_type_campaign_and_minimum_value(self):
        campaign = self.env['utm.campaign'].create({'name': 'Spring'})
        self.behaviour(7, name='Video', event_type='custom', name_pattern='Video watched*', min_value=30)
        self.behaviour(2, name='Spring campaign', name_pattern='*', campaign_id=campaign.id)
        self.Event._ingest([
            {'event_type': 'custom', 'partner_id': self.partner.id, 'name': 'Video watched 45 s', 'value': 45},
            {'event_type': 'custom', 'partner_id': self.partner.id, 'name': 'video WATCHED 10 s', 'value': 10},
            {'event_type': 'custom', 'partner_id': self.partner.id, 'name': 'Parcel delivered', 'value': 99},
            {'event_type': 'page_view', 'partner_id': self.partner.id, 'name': 'Home', 'campaign_id': campaign.id},
        ])
        self.assertEqual(self.partner.mautomate_score, 7 + 2)

    def test_negative_points(self):
        self.behaviour(-10, name='Jobs', event_type='page_view', url_pattern='/jobs*')
        self.behaviour(-5, name='Bounce', event_type='email_bounce')
        self.page(self.partner, 'https://www.example.com/jobs/developer')
        self.Event._ingest([{'event_type': 'email_bounce', 'partner_id': self.partner.id}])
        self.assertEqual(self.partner.mautomate_score, -15)
        self.assertEqual(self.partner.mautomate_grade, 'D4')

    def test_cap_per_contact(self):
        self.behaviour(10, event_type='download', max_per_contact=2)
        for _index in range(3):
            self.Event._ingest([{'event_type': 'download', 'partner_id': self.partner.id}])
        other = self.env['res.partner'].create({'name': 'Other', 'email': 'other@prospect.example.com'})
        # One batch of three (an attached history) is capped too, in time order.
        self.Event._ingest([{'event_type': 'download', 'partner_id': other.id,
                             'occurred_at': fields.Datetime.now() - timedelta(hours=hours)} for hours in (1, 3, 2)])
        self.assertEqual(self.partner.mautomate_score, 20)
        self.assertEqual(other.mautomate_score, 20)
        awarded = self.Entry.search([('partner_id', '=', other.id)]).mapped('date')
        self.assertEqual(min(awarded), min(self.Event.search([('partner_id', '=', other.id)]).mapped('occurred_at')))

    def test_cap_per_period(self):
        rule = self.behaviour(10, event_type='page_view', max_per_period=1, period_days=7)
        # A history of one batch: days 20, 18, 12 and 1 ago -> 20 (18 is within 7 days of it), 12 and 1.
        self.Event._ingest([{'event_type': 'page_view', 'partner_id': self.partner.id,
                             'occurred_at': fields.Datetime.now() - timedelta(days=days)} for days in (20, 18, 12, 1)])
        self.assertEqual(self.partner.mautomate_score, 30)
        self.page(self.partner, 'https://www.example.com/')  # within 7 days of the award of yesterday
        self.assertEqual(self.partner.mautomate_score, 30)
        self.assertEqual(rule.entry_count, 3)

    def test_decay_halves_a_score_after_one_half_life(self):
        self.set_params(score_half_life=30)
        self.behaviour(10, event_type='page_view')
        self.page(self.partner, 'https://www.example.com/', days_ago=30)
        self.assertAlmostEqual(self.partner.mautomate_score, 5, delta=0.01)
        self.page(self.partner, 'https://www.example.com/')
        self.assertAlmostEqual(self.partner.mautomate_score, 15, delta=0.01)
        self.set_params(score_half_life=0)
        self.Scoring._cron_recompute()
        self.assertEqual(self.partner.mautomate_score, 20)

    def test_fit_rules_follow_the_contact(self):
        sweden = self.env.ref('base.se')
        self.fit(40, [('country_id', '=', sweden.id)])
        self.fit(25, [('function', 'ilike', 'CTO')])
        self.assertEqual(self.partner.mautomate_fit_score, 0)
        self.partner.write({'country_id': sweden.id})
        self.assertEqual(self.partner.mautomate_fit_score, 40)
        self.partner.write({'function': 'CTO'})
        self.assertEqual(self.partner.mautomate_fit_score, 65)
        self.assertEqual(self.partner.mautomate_grade, 'A4')
        self.partner.write({'country_id': self.env.ref('base.dk').id})
        self.assertEqual(self.partner.mautomate_fit_score, 25)
        self.assertEqual(self.partner.mautomate_grade, 'C4')

    def test_grade_boundaries(self):
        params = self.Scoring._get_params()

        def grade(fit, score):
            self.env.cr.execute(SQL("SELECT %s", self.Scoring._grade_sql(params, SQL('%s', fit), SQL('%s::float8', score))))
            return self.env.cr.fetchone()[0]

        self.assertEqual([grade(60, 100), grade(59, 99.99), grade(30, 50), grade(29, 49), grade(10, 20), grade(9, 19.5)],
                         ['A1', 'B2', 'B2', 'C3', 'C3', 'D4'])
        self.set_params(grade_fit_a=80, grade_score_1=200)
        params = self.Scoring._get_params()
        self.assertEqual(grade(60, 100), 'B2')

    def test_invalid_rules_are_refused_with_a_message(self):
        with self.assertRaisesRegex(ValidationError, "domain is not valid"):
            self.fit(10, [('no_such_field', '=', 1)])
        with self.assertRaisesRegex(ValidationError, "domain is not valid"):
            self.Rule.create({'name': 'Broken', 'rule_type': 'fit', 'domain': "[('name', '=',"})
        with self.assertRaisesRegex(ValidationError, "choose an event type"):
            self.Rule.create({'name': 'Everything', 'rule_type': 'behaviour', 'points': 1})
        with self.assertRaisesRegex(ValidationError, "cannot be blank"):
            self.Rule.create({'name': 'Blank', 'rule_type': 'behaviour', 'url_pattern': '  '})
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            self.behaviour(5, event_type='download', max_per_contact=-1)
        with self.assertRaisesRegex(ValidationError, "needs both"):
            self.behaviour(5, event_type='download', max_per_period=2)
        self.assertTrue(self.behaviour(5, event_type='download', max_per_period=2, period_days=7))


@tagged('post_install', '-at_install')
class TestScoreLedger(ScoringCase):

    def test_recompute_after_a_rule_change_or_deletion(self):
        rule = self.behaviour(10, event_type='page_view', url_pattern='/pricing*')
        self.page(self.partner, 'https://www.example.com/pricing')
        self.page(self.partner, 'https://www.example.com/features')
        self.assertEqual(self.partner.mautomate_score, 10)
        rule.write({'points': 20, 'url_pattern': '*'})
        self.assertTrue(rule.needs_rebuild)
        self.Scoring._cron_recompute()
        self.assertFalse(rule.needs_rebuild)
        self.assertEqual(self.partner.mautomate_score, 40)
        self.assertEqual(set(rule.entry_ids.mapped('points')), {20})
        rule.unlink()
        self.Scoring._cron_recompute()
        self.assertEqual(self.partner.mautomate_score, 0)
        self.assertFalse(self.Entry.search([('partner_id', '=', self.partner.id)]))

    def test_refresh_runs_in_the_cron(self):
        self.behaviour(10, event_type='download')
        cron = self.env.ref('mautomate_marketing.ir_cron_mautomate_score_refresh')
        Trigger = self.env['ir.cron.trigger']
        Trigger.search([('cron_id', '=', cron.id)]).unlink()
        scoring_class = type(self.Scoring)
        # The real enqueue: the request writes queue rows only, and wakes the sleeping cron through _trigger().
        self.patch(scoring_class, '_enqueued', self.enqueued_origin)
        self.Event._ingest([{'event_type': 'download', 'partner_id': self.partner.id}])
        self.assertFalse(self.Entry.search_count([('partner_id', '=', self.partner.id)]), "no award in the request")
        self.assertEqual(self.partner.mautomate_score, 0, "no contact row is written by the request")
        self.assertEqual(Trigger.search_count([('cron_id', '=', cron.id)]), 1)
        # A trigger waits: the next request adds none, the run it starts takes both.
        self.Event._ingest([{'event_type': 'download', 'partner_id': self.partner.id}])
        self.assertEqual(Trigger.search_count([('cron_id', '=', cron.id)]), 1)
        self.Scoring._cron_refresh_queue()
        self.assertEqual(self.Entry.search_count([('partner_id', '=', self.partner.id)]), 2)

    def test_refresh_triggers_itself_for_late_rows(self):
        """ Rows committed after a run's last batch, by requests that saw its trigger waiting: the run triggers the
        cron again, as Odoo drops the triggers a run consumed. """
        self.behaviour(10, event_type='download')
        cron = self.env.ref('mautomate_marketing.ir_cron_mautomate_score_refresh')
        Trigger = self.env['ir.cron.trigger']
        self.patch(type(self.Scoring), '_enqueued', self.enqueued_origin)
        self.Event._ingest([{'event_type': 'download', 'partner_id': self.partner.id}])
        Trigger.search([('cron_id', '=', cron.id)]).unlink()
        # The run's batches found the queue empty: the row came after them.
        refresh_batch = type(self.Scoring)._refresh_queue_batch
        late = [True]
        self.patch(type(self.Scoring), '_refresh_queue_batch',
                   lambda scoring, batch_size: None if late else refresh_batch(scoring, batch_size))
        self.Scoring._cron_refresh_queue()
        self.assertEqual(Trigger.search_count([('cron_id', '=', cron.id)]), 1)
        # The run that trigger starts takes the row.
        late.clear()
        self.Scoring._cron_refresh_queue()
        self.assertEqual(self.Entry.search_count([('partner_id', '=', self.partner.id)]), 1)
        self.assertFalse(self.env['mautomate.score.queue'].search_count([]))

    def test_recompute_is_idempotent(self):
        self.behaviour(10, event_type='page_view')
        self.page(self.partner, 'https://www.example.com/')
        self.Scoring._cron_recompute()
        self.Scoring._cron_recompute()
        self.assertEqual(len(self.Entry.search([('partner_id', '=', self.partner.id)])), 1)
        self.assertEqual(self.partner.mautomate_score, 10)

    def test_rebuild_gives_the_capped_awards_and_writes_only_what_changed(self):
        pages = self.behaviour(10, name='Pages', event_type='page_view', max_per_period=2, period_days=7)
        downloads = self.behaviour(5, name='Downloads', event_type='download', max_per_contact=2)
        lead = self.env['crm.lead'].create({'name': 'No contact yet'})
        now = fields.Datetime.now()
        # Cap of 2 in any 7 days, in time order: days 30 and 29 ago, not 28 (30 and 29 within 7 days before it),
        # 22.5 (only 29 within), 21 (only 22.5 within: 29 is 8 days before), not 20, and 1.
        self.Event._ingest([{'event_type': 'page_view', 'partner_id': self.partner.id, 'url': 'https://www.example.com/',
                             'occurred_at': now - timedelta(days=days)} for days in (1, 20, 21, 22.5, 28, 29, 30)])
        self.Event._ingest([{'event_type': 'download', 'lead_id': lead.id, 'occurred_at': now - timedelta(hours=hours)}
                            for hours in (1, 3, 2)])

        def awards():
            # The demo's events score too, once the rules are awarded over the whole log.
            entries = self.Entry.search([('rule_id', 'in', (pages | downloads).ids),
                                         '|', ('partner_id', '=', self.partner.id), ('lead_id', '=', lead.id)])
            return {(entry.rule_id, entry.event_id.occurred_at, entry.points): entry.id for entry in entries}
        ingested = awards()
        self.assertEqual(sorted(round((now - date).total_seconds() / 86400, 1) for rule, date, _points in ingested if rule == pages),
                         [1, 21, 22.5, 29, 30])
        self.assertEqual(sorted(round((now - date).total_seconds() / 3600) for rule, date, _points in ingested if rule == downloads),
                         [2, 3])
        self.Rule.action_recompute_scores()
        self.Scoring._cron_recompute()
        self.assertEqual(awards(), ingested, "the same awards, not written again")
        pages.points = 20
        downloads.max_per_contact = 1
        self.Scoring._cron_recompute()
        rebuilt = awards()
        self.assertEqual({(rule, date) for rule, date, points in rebuilt if rule == pages},
                         {(rule, date) for rule, date, points in ingested if rule == pages})
        self.assertEqual({points for rule, date, points in rebuilt if rule == pages}, {20})
        self.assertEqual(sorted(ingested[rule, date, 10] for rule, date, points in rebuilt if rule == pages),
                         sorted(rebuilt[key] for key in rebuilt if key[0] == pages), "updated in place")
        self.assertEqual([round((now - date).total_seconds() / 3600) for rule, date, _points in rebuilt if rule == downloads], [3])
        self.assertEqual(self.partner.mautomate_score, 100)
        self.assertEqual(lead.mautomate_score, 5)

    def test_identification_scores_the_anonymous_history_at_once(self):
        self.behaviour(10, event_type='page_view', url_pattern='/pricing*')
        browser = self.new_browser_id()
        self.Event._ingest([{'event_type': 'page_view', 'anonymous_id': browser, 'url': 'https://www.example.com/pricing'},
                            {'event_type': 'page_view', 'anonymous_id': browser, 'url': 'https://www.example.com/pricing/x'}])
        self.assertFalse(self.Entry.search([('event_id.anonymous_id', '=', browser)]), "anonymous events score no one")
        attached = self.Event._attach_anonymous_history(self.partner, anonymous_ids=[browser])
        self.assertEqual(attached, 2)
        self.assertEqual(self.partner.mautomate_score, 20)

    def test_why_this_score(self):
        self.behaviour(10, name='Visited pricing', event_type='page_view', url_pattern='/pricing*')
        self.behaviour(30, name='Asked for a quote', event_type='form_submit')
        self.behaviour(-10, name='Visited jobs', event_type='page_view', url_pattern='/jobs*')
        self.behaviour(1, name='Any page', event_type='page_view')
        self.page(self.partner, 'https://www.example.com/pricing', name='Pricing')
        self.page(self.partner, 'https://www.example.com/pricing', name='Pricing')
        self.page(self.partner, 'https://www.example.com/jobs', name='Jobs')
        self.Event._ingest([{'event_type': 'form_submit', 'partner_id': self.partner.id, 'name': 'Quote request'}])
        reasons = self.Scoring._get_reasons([self.partner.id], [], limit=3)
        self.assertEqual([(reason['name'], reason['points'], reason['count']) for reason in reasons],
                         [('Asked for a quote', 30, 1), ('Visited pricing', 20, 2), ('Visited jobs', -10, 1)])
        why = str(self.partner.mautomate_score_why)
        self.assertIn('Asked for a quote', why)
        self.assertIn('+30', why)
        self.assertIn('Quote request', why, "the latest scoring events are listed")
        self.assertLess(why.index('Asked for a quote'), why.index('Visited pricing'))
        action = self.partner.action_mautomate_score_entries()
        self.assertEqual(self.Entry.search_count(action['domain']), 7)

    def test_a_lead_scores_as_its_person(self):
        self.behaviour(10, event_type='page_view')
        namesake = self.env['res.partner'].create({'name': 'Ann again', 'email': 'ANN@prospect.example.com'})
        lead = self.env['crm.lead'].create({'name': 'Ann wants a demo', 'email_from': 'ann@prospect.example.com'})
        self.page(self.partner, 'https://www.example.com/a')
        self.page(namesake, 'https://www.example.com/b')
        self.Event._ingest([{'event_type': 'page_view', 'lead_id': lead.id, 'url': 'https://www.example.com/c'}])
        self.assertEqual(lead.mautomate_score, 30)
        self.assertEqual(self.partner.mautomate_score, 10)


@tagged('post_install', '-at_install')
class TestLifecycle(ScoringCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context={**cls.env.context, 'mail_create_nosubscribe': True})
        cls.salesman = common.new_test_user(cls.env, 'mau_hot_seller', groups='sales_team.group_sale_salesman',
                                            name='Sigrid Seller')
        # crm's rule-based assignment, drawing among the teams that match: the demo's teams take none here.
        cls.env['ir.config_parameter'].set_param('crm.lead.auto.assignment', True)
        cls.env['crm.team'].search([]).assignment_optout = True
        cls.team = cls.env['crm.team'].create({'name': 'Nordics', 'use_leads': True,
                                               'assignment_domain': "[('country_id.code', 'in', ('SE', 'DK'))]"})
        cls.env['crm.team.member'].create({'crm_team_id': cls.team.id, 'user_id': cls.salesman.id})
        cls.env['res.config.settings'].create({'group_use_lead': True}).execute()
        sweden = cls.env.ref('base.se')
        cls.partner.write({'country_id': sweden.id})
        cls.fit_rule = cls.Rule.create({'name': 'Nordic', 'rule_type': 'fit', 'points': 60,
                                        'domain': repr([('country_id.code', 'in', ['SE', 'DK'])])})
        cls.Scoring._cron_recompute()
        cls.quote = cls.Rule.create({'name': 'Asked for a quote', 'rule_type': 'behaviour', 'points': 30,
                                     'event_type': 'form_submit'})
        cls.pricing = cls.Rule.create({'name': 'Visited pricing', 'rule_type': 'behaviour', 'points': 15,
                                       'event_type': 'page_view', 'url_pattern': '/pricing*'})

    def stage_events(self, partner):
        return self.Event.search([('partner_id', '=', partner.id), ('event_type', '=', 'stage_change')])

    def hot_activities(self, leads):
        return self.env['mail.activity'].search([
            ('res_model', '=', 'crm.lead'), ('res_id', 'in', leads.ids),
            ('activity_type_id', '=', self.env.ref('mautomate_marketing.mail_activity_type_hot_lead').id)])

    def test_thresholds_move_the_stage_and_hand_off_once(self):
        self.assertEqual(self.partner.mautomate_fit_score, 60)
        self.page(self.partner, 'https://www.example.com/')
        self.Scoring._cron_recompute()
        self.assertEqual(self.partner.mautomate_stage, 'subscriber')
        self.Event._ingest([{'event_type': 'form_submit', 'partner_id': self.partner.id, 'name': 'Newsletter'}])
        self.assertEqual(self.partner.mautomate_stage, 'lead')
        self.assertFalse(self.env['crm.lead'].search([('partner_id', '=', self.partner.id)]))
        self.page(self.partner, 'https://www.example.com/pricing')
        self.page(self.partner, 'https://www.example.com/pricing')
        self.assertEqual(self.partner.mautomate_score, 60)
        self.assertEqual(self.partner.mautomate_stage, 'mql')
        self.assertEqual(self.partner.mautomate_grade, 'A2')
        # Sales gets it: a new lead, assigned by the team's rule to its salesperson, with a Hot Lead activity.
        lead = self.env['crm.lead'].search([('partner_id', '=', self.partner.id)])
        self.assertEqual(len(lead), 1)
        self.assertEqual(lead.team_id, self.team)
        self.assertEqual(lead.user_id, self.salesman)
        self.assertTrue(lead.mautomate_handoff_date)
        self.assertEqual(lead.mautomate_stage, 'mql')
        activity = self.hot_activities(lead)
        self.assertEqual(activity.user_id, self.salesman)
        self.assertIn('Asked for a quote', str(activity.note))
        self.assertIn('Visited pricing', str(activity.note))
        self.assertTrue(lead.message_ids.filtered(lambda message: 'Marketing qualified' in str(message.body)))
        self.assertIn({'from': 'lead', 'to': 'mql'}, self.stage_events(self.partner).mapped('payload'))
        # Dropping below and crossing again hands nothing over again; stages never move back.
        self.pricing.write({'points': -100})
        self.Scoring._cron_recompute()
        self.assertEqual(self.partner.mautomate_stage, 'mql')
        self.pricing.write({'points': 15})
        self.Scoring._cron_recompute()
        self.page(self.partner, 'https://www.example.com/pricing')
        self.assertEqual(self.partner.mautomate_stage, 'mql')
        self.assertEqual(len(self.env['crm.lead'].search([('partner_id', '=', self.partner.id)])), 1)
        self.assertEqual(len(self.hot_activities(lead)), 1)
        # SQL at the second threshold.
        self.page(self.partner, 'https://www.example.com/pricing')
        self.page(self.partner, 'https://www.example.com/pricing')
        self.assertEqual(self.partner.mautomate_score, 105)
        self.assertEqual(self.partner.mautomate_stage, 'sql')
        self.assertEqual(len(self.hot_activities(lead)), 1)

    def test_an_open_lead_is_handed_off_not_duplicated(self):
        lead = self.env['crm.lead'].create({'name': 'Ann', 'partner_id': self.partner.id, 'type': 'lead', 'user_id': False,
                                            'country_id': self.env.ref('base.se').id})
        self.assertEqual(self.partner.mautomate_stage, 'lead')
        self.Event._ingest([{'event_type': 'form_submit', 'partner_id': self.partner.id, 'name': 'Quote'}])
        self.Event._ingest([{'event_type': 'form_submit', 'partner_id': self.partner.id, 'name': 'Quote again'}])
        self.assertEqual(lead.mautomate_stage, 'mql')
        self.assertEqual(self.env['crm.lead'].search([('partner_id', '=', self.partner.id)]), lead)
        self.assertEqual(lead.user_id, self.salesman)
        self.assertEqual(len(self.hot_activities(lead)), 1)

    def test_poor_fit_is_not_handed_off(self):
        self.partner.write({'country_id': self.env.ref('base.us').id})
        for _index in range(3):
            self.Event._ingest([{'event_type': 'form_submit', 'partner_id': self.partner.id, 'name': 'Quote'}])
        self.assertEqual(self.partner.mautomate_score, 90)
        self.assertEqual(self.partner.mautomate_grade, 'D2')
        self.assertEqual(self.partner.mautomate_stage, 'lead')
        self.assertFalse(self.env['crm.lead'].search([('partner_id', '=', self.partner.id)]))

    def test_crm_facts_move_the_stage(self):
        lead = self.env['crm.lead'].create({'name': 'Ann', 'partner_id': self.partner.id, 'type': 'lead'})
        self.assertEqual((lead.mautomate_stage, self.partner.mautomate_stage), ('lead', 'lead'))
        lead.convert_opportunity(self.partner)
        self.assertEqual((lead.mautomate_stage, self.partner.mautomate_stage), ('opportunity', 'opportunity'))
        lead.action_set_won()
        self.assertEqual((lead.mautomate_stage, self.partner.mautomate_stage), ('customer', 'customer'))
        self.assertIn({'from': 'opportunity', 'to': 'customer'}, self.stage_events(self.partner).mapped('payload'))


@tagged('post_install', '-at_install', 'security')
class TestScoringAccess(ScoringCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_user = common.new_test_user
        cls.env = cls.env(context={**cls.env.context, 'no_reset_password': True, 'mail_create_nosubscribe': True})
        new_user(cls.env, 'mau_s_employee', groups='base.group_user')
        new_user(cls.env, 'mau_s_salesman', groups='sales_team.group_sale_salesman')
        new_user(cls.env, 'mau_s_marketing', groups='mautomate_marketing.group_mautomate_user')
        new_user(cls.env, 'mau_s_manager', groups='mautomate_marketing.group_mautomate_manager')
        new_user(cls.env, 'mau_s_portal', groups='base.group_portal')
        cls.rule = cls.Rule.create({'name': 'Download', 'rule_type': 'behaviour', 'points': 10, 'event_type': 'download'})
        cls.Event._ingest([{'event_type': 'download', 'partner_id': cls.partner.id}])
        cls.Scoring._cron_refresh_queue()

    @users('mau_s_salesman', 'mau_s_marketing')
    def test_sales_and_marketing_read_rules_ledger_and_why(self):
        partner = self.env['res.partner'].browse(self.partner.id)
        self.assertEqual(partner.mautomate_score, 10)
        self.assertIn('Download', str(partner.mautomate_score_why))
        self.assertEqual(self.env['mautomate.score.entry'].search_count([('partner_id', '=', partner.id)]), 1)
        self.assertEqual(self.env['mautomate.score.rule'].browse(self.rule.id).name, 'Download')
        with self.assertRaises(AccessError), mute_logger('odoo.addons.base.models.ir_model'):
            self.env['mautomate.score.rule'].create({'name': 'Mine', 'rule_type': 'behaviour', 'event_type': 'download'})
        with self.assertRaises(AccessError), mute_logger('odoo.addons.base.models.ir_model'):
            self.env['mautomate.score.rule'].browse(self.rule.id).action_recompute_scores()

    @users('mau_s_manager')
    def test_manager_manages_rules(self):
        rule = self.env['mautomate.score.rule'].create({'name': 'Mine', 'rule_type': 'behaviour', 'event_type': 'cta_click'})
        rule.points = 5
        self.assertEqual(rule.action_recompute_scores()['tag'], 'display_notification')
        rule.unlink()

    @users('mau_s_employee')
    def test_employee_reads_grades_not_the_ledger(self):
        partner = self.env['res.partner'].browse(self.partner.id)
        self.assertEqual(partner.mautomate_grade, 'D4')
        with self.assertRaises(AccessError), mute_logger('odoo.addons.base.models.ir_model'):
            self.env['mautomate.score.entry'].search([])
        with self.assertRaises(AccessError), mute_logger('odoo.addons.base.models.ir_model'):
            self.env['mautomate.score.rule'].search([])

    @users('mau_s_portal')
    def test_portal_user_reads_no_grade_not_even_its_own(self):
        partner = self.env['res.partner'].browse(self.env.user.partner_id.id)  # env.user is sudo
        self.assertTrue(partner.name.startswith('mau_s_portal'))
        with self.assertRaises(AccessError), mute_logger('odoo.addons.base.models.ir_model'):
            partner.read(['mautomate_grade'])
