import json
import logging
import math
import random
import uuid
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import common, tagged, users

from odoo.addons.mautomate_marketing.models import mautomate_predictive_model as predictive
from odoo.addons.mautomate_marketing.models.mautomate_predictive_model import FEATURES

# An AUC this data allows: with won ~ sigmoid(3 x engagement) and behaviour noisy around engagement,
# the best possible ranking scores about 0.85.
AUC_FLOOR = 0.75


@tagged('post_install', '-at_install')
class TestPredictiveProbability(common.TransactionCase):
    """ The predictive probability learns from a generated pipeline whose outcome depends on behaviour only:
    what each lead's people did in the event log. Odoo's automated probability sees its own fields
    (e-mail and phone quality, country, source, language, tags), here unrelated to the outcome. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context={**cls.env.context, 'tracking_disable': True, 'mail_create_nolog': True,
                                   'mail_create_nosubscribe': True, 'no_reset_password': True})
        cls.Model = cls.env['mautomate.predictive.model']
        cls.Lead = cls.env['crm.lead']
        # Odoo's naive Bayes with every field it offers, so that it is compared at its best.
        cls.env['ir.config_parameter'].sudo().set_param(
            'crm.pls_fields', 'phone_state,email_state,country_id,state_id,source_id,lang_id,tag_ids')
        cls.leads, cls.won = cls._generate_pipeline(300)
        cls.Lead._cron_update_automated_probabilities()
        cls.domain = [('id', 'in', cls.leads.ids)]
        common.new_test_user(cls.env, 'pred_salesman', groups='sales_team.group_sale_salesman')
        common.new_test_user(cls.env, 'pred_marketing_user', groups='mautomate_marketing.group_mautomate_user')
        common.new_test_user(cls.env, 'pred_manager', groups='mautomate_marketing.group_mautomate_manager')
        # Two open leads: one very engaged, one silent.
        cls.hot_lead, cls.cold_lead = cls.Lead.create([
            {'name': 'Hot open lead', 'email_from': 'hot@open.example.com', 'user_id': False},
            {'name': 'Cold open lead', 'email_from': 'cold@open.example.com', 'user_id': False},
        ])
        now = fields.Datetime.now()
        cls.env['mautomate.event']._ingest(
            [{'event_type': 'page_view', 'lead_id': cls.hot_lead.id, 'url': f'https://example.com/pricing?{step}',
              'occurred_at': now - timedelta(days=1, hours=step)} for step in range(10)]
            + [{'event_type': event_type, 'source': 'email', 'lead_id': cls.hot_lead.id, 'occurred_at': now - timedelta(days=2)}
               for event_type in ('email_sent', 'email_open', 'email_click')]
            + [{'event_type': 'form_submit', 'lead_id': cls.hot_lead.id, 'occurred_at': now - timedelta(days=1)}]
            + [{'event_type': 'email_sent', 'source': 'email', 'lead_id': cls.cold_lead.id,
                'occurred_at': now - timedelta(days=90)}])

    @classmethod
    def _generate_pipeline(cls, count):
        """ count closed leads; each is linked to its events in one of the ways a Timeline finds them. """
        rng = random.Random(2024)
        countries = cls.env['res.country'].search([], limit=5).ids
        sources = cls.env['utm.source'].search([], limit=4).ids or [False]
        now = fields.Datetime.now()
        lead_vals, partner_vals, profiles = [], [], []
        for index in range(count):
            engagement = rng.gauss(0, 1)
            won = rng.random() < 1 / (1 + math.exp(-3 * engagement))
            email = f'buyer{index}@pipeline{index}.example.com'
            profiles.append((index % 3, won, engagement, email))
            if index % 3 != 1:
                partner_vals.append({'name': f'Buyer {index}', 'email': email})
            lead_vals.append({'name': f'Deal {index}', 'email_from': email, 'user_id': False, 'type': 'opportunity',
                              'country_id': rng.choice(countries), 'source_id': rng.choice(sources)})
        partners = iter(cls.env['res.partner'].create(partner_vals))
        for (link, _won, _engagement, _email), vals in zip(profiles, lead_vals, strict=True):
            if link == 0:  # the lead's customer
                vals['partner_id'] = next(partners).id
            elif link == 2:  # a contact with the lead's e-mail, not its customer
                vals['mautomate_test_contact'] = next(partners).id
        contacts = [vals.pop('mautomate_test_contact', False) for vals in lead_vals]
        leads = cls.Lead.create(lead_vals)
        events = []
        for lead, contact_id, (link, _won, engagement, _email) in zip(leads, contacts, profiles, strict=True):
            who = {'lead_id': lead.id} if link == 1 else {'partner_id': lead.partner_id.id or contact_id}
            last = now - timedelta(days=min(120, max(1, 15 - 8 * engagement + rng.gauss(0, 4))))
            for step in range(max(0, round(3 + 2.5 * engagement + rng.gauss(0, 1)))):
                events.append({'event_type': 'page_view', 'url': f'https://example.com/page{step}',
                               'occurred_at': last - timedelta(hours=5 * step), **who})
            if engagement + rng.gauss(0, 0.8) > 0.5:
                events.append({'event_type': 'form_submit', 'occurred_at': last, **who})
            for mail in range(2):
                sent = last - timedelta(days=10 * (mail + 1))
                events.append({'event_type': 'email_sent', 'source': 'email', 'occurred_at': sent, **who})
                if engagement + rng.gauss(0, 1) > -0.3:
                    events.append({'event_type': 'email_open', 'source': 'email', 'occurred_at': sent + timedelta(hours=1), **who})
                if engagement + rng.gauss(0, 1) > 0.7:
                    events.append({'event_type': 'email_click', 'source': 'email', 'occurred_at': sent + timedelta(hours=2), **who})
            if engagement + rng.gauss(0, 0.5) < -1.8:
                events.append({'event_type': 'email_bounce', 'source': 'email', 'occurred_at': last, **who})
        cls.env['mautomate.event']._ingest(events)
        won = leads.browse([lead.id for lead, profile in zip(leads, profiles, strict=True) if profile[1]])
        won.action_set_won()
        (leads - won).action_set_lost()
        return leads, won

    def features(self, leads):
        ids, matrix, outcomes = self.Model._lead_features(leads.ids)
        return {lead_id: dict(zip(FEATURES, row, strict=True)) for lead_id, row in zip(ids, matrix.tolist(), strict=True)}, \
            dict(zip(ids, outcomes, strict=True))

    def test_behaviour_beats_odoo(self):
        training = self.Model._train(lead_domain=self.domain)
        self.assertEqual(training.training_size, 300)
        self.assertEqual(training.won_count, len(self.won))
        self.assertEqual(training.held_out_size, 75)
        self.assertGreaterEqual(training.auc, AUC_FLOOR, "behaviour carries the outcome: the model must find it")
        self.assertGreater(training.auc, training.odoo_auc + 0.1,
                           "Odoo's automated probability does not see behaviour; it must rank the same leads worse")
        self.assertTrue(training.active)
        self.assertEqual(self.Model.search([]), training, "only the latest training is active")
        # The model is plain JSON, no pickle.
        params = json.loads(json.dumps(training.parameters))
        self.assertEqual(params['features'], FEATURES)
        self.assertEqual(len(params['coef']), len(FEATURES))
        self.assertTrue(training.feature_weights)
        # Every open lead was predicted; won leads say 100, lost ones 0.
        self.assertGreater(training.predicted_count, 0)
        hot, cold = self.hot_lead.mautomate_probability, self.cold_lead.mautomate_probability
        self.assertGreater(hot, 80)
        self.assertLess(cold, 10)
        self.assertEqual(set(self.won.mapped('mautomate_probability')), {100.0})
        lost = (self.leads - self.won).with_context(active_test=False)
        self.assertEqual(set(lost.mapped('mautomate_probability')), {0.0})
        # A new training replaces the active one.
        second = self.Model._train(lead_domain=self.domain)
        self.assertFalse(training.active)
        self.assertEqual(self.Model.search([]), second)
        self.assertAlmostEqual(second.auc, training.auc, places=6, msg="deterministic split and fit")

    def test_features_are_the_timeline_events(self):
        """ A lead's features count the events its Timeline shows: its own, its customer's, those of contacts
        with its e-mail and those of its website visitors, each once. """
        customer, namesake = self.env['res.partner'].create([
            {'name': 'Customer', 'email': 'customer@features.example.com'},
            {'name': 'Namesake', 'email': 'namesake@features.example.com'},
        ])
        visitor = self.env['website.visitor'].create({'access_token': uuid.uuid4().hex})
        lead = self.Lead.create({'name': 'Features', 'partner_id': customer.id, 'user_id': False})
        lead.write({'email_from': 'namesake@features.example.com', 'visitor_ids': [(4, visitor.id)]})
        other = self.Lead.create({'name': 'Other', 'email_from': 'other@features.example.com', 'user_id': False})
        now = fields.Datetime.now()
        Event = self.env['mautomate.event']
        Event._ingest([
            {'event_type': 'page_view', 'partner_id': customer.id, 'occurred_at': now - timedelta(days=40)},
            {'event_type': 'email_open', 'source': 'email', 'partner_id': namesake.id, 'occurred_at': now - timedelta(days=3)},
            {'event_type': 'form_submit', 'lead_id': lead.id, 'partner_id': customer.id, 'occurred_at': now - timedelta(days=2)},
            {'event_type': 'page_view', 'visitor_id': visitor.id, 'occurred_at': now - timedelta(days=1)},
            {'event_type': 'page_view', 'lead_id': other.id},
        ])
        # What people did, not what the CRM logs about the lead's progress (stage changes).
        behaviour = [('event_type', 'not in', predictive.NOT_BEHAVIOUR_EVENT_TYPES),
                     ('source', 'not in', predictive.NOT_BEHAVIOUR_SOURCES)]
        features, outcomes = self.features(lead | other)
        self.assertEqual(outcomes, {lead.id: None, other.id: None})
        self.assertEqual(Event.search_count([*lead._mautomate_timeline_domain(), *behaviour]), 4)
        self.assertAlmostEqual(features[lead.id]['events'], math.log1p(4))
        self.assertAlmostEqual(features[lead.id]['page_view'], math.log1p(2))
        self.assertAlmostEqual(features[lead.id]['email_open'], math.log1p(1))
        self.assertAlmostEqual(features[lead.id]['form_submit'], math.log1p(1))
        self.assertAlmostEqual(features[lead.id]['events_recent'], math.log1p(3))
        self.assertAlmostEqual(features[lead.id]['days_since_last_event'], 1, delta=0.01)
        self.assertEqual(features[lead.id]['has_email'], 1)
        self.assertAlmostEqual(features[other.id]['events'], math.log1p(1))
        # A closed lead is seen as it was when it closed.
        lead.action_set_lost()
        lead.date_closed = now - timedelta(days=2, hours=12)
        features, outcomes = self.features(lead)
        self.assertEqual(outcomes, {lead.id: 0})
        self.assertAlmostEqual(features[lead.id]['events'], math.log1p(2))
        self.assertAlmostEqual(features[lead.id]['days_since_last_event'], 0.5, delta=0.01)

    def test_prediction_is_set_based(self):
        self.Model._train(lead_domain=self.domain)
        few, many = self.hot_lead | self.cold_lead, self.leads[:150] | self.hot_lead
        self.env.cr.execute("UPDATE crm_lead SET mautomate_probability = NULL WHERE id IN %s", [tuple(many.ids + few.ids)])
        self.env.invalidate_all()
        few._mautomate_predict_probability()  # caches warm
        queries = []
        for leads in (few, many):
            before = self.env.cr.sql_log_count
            self.assertEqual(leads._mautomate_predict_probability(), len(leads))
            queries.append(self.env.cr.sql_log_count - before)
        self.assertEqual(queries[0], queries[1], "as many queries for 151 leads as for 2")
        self.env.cr.execute("SELECT count(*) FROM crm_lead WHERE id IN %s AND mautomate_probability IS NULL", [tuple(many.ids)])
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.assertGreater(self.hot_lead.mautomate_probability, self.cold_lead.mautomate_probability)

    def test_too_little_data(self):
        trainings = self.Model.with_context(active_test=False).search_count([])
        with self.assertRaisesRegex(UserError, r"at least 20 of them.*There are \d+ won and \d+ lost leads"):
            self.Model._train(lead_domain=[('id', 'in', self.leads[:12].ids)])
        with self.assertRaisesRegex(UserError, r"at least 5 won and 5 lost\. There are \d+ won and 0 lost leads"):
            self.Model._train(lead_domain=[('id', 'in', self.won.ids)])
        self.assertEqual(self.Model.with_context(active_test=False).search_count([]), trainings)
        # The cron says it in the log, no traceback.
        with patch.object(predictive, 'MIN_TRAINING_LEADS', 10 ** 9), \
                self.assertLogs(predictive.__name__, logging.INFO) as logs:
            self.Model._cron_train()
        self.assertIn("Predictive probability not trained: The predictive probability learns from won and lost leads",
                      logs.output[0])

    def test_cron_trains(self):
        before = self.Model.search([])
        self.Model._cron_train()
        training = self.Model.search([])
        self.assertNotEqual(training, before)
        self.assertGreaterEqual(training.training_size, 300)
        self.assertTrue(self.hot_lead.mautomate_probability)


    # Access: sales reps and marketers read the probability and the trainings; only managers train.

    def train(self):
        return self.env['mautomate.predictive.model'].sudo()._train(lead_domain=self.domain)

    @users('pred_salesman')
    def test_salesman_reads_cannot_train(self):
        training = self.train()
        lead = self.env['crm.lead'].browse(self.hot_lead.id)
        self.assertGreater(lead.mautomate_probability, 50)
        form = self.env['crm.lead'].get_views([(False, 'form')])['views']['form']['arch']
        self.assertIn('mautomate_probability', form)
        self.assertEqual(self.env['mautomate.predictive.model'].search([]).auc, training.auc)
        with self.assertRaises(AccessError):
            self.env['mautomate.predictive.model'].action_train()
        with self.assertRaises(AccessError):
            self.env['mautomate.predictive.model'].create({})
        with self.assertRaises(AccessError):
            self.env['mautomate.predictive.model'].browse(training.id).write({'active': False})

    @users('pred_marketing_user')
    def test_marketing_user_reads_cannot_train(self):
        trained = self.train()
        training = self.env['mautomate.predictive.model'].search([])
        self.assertEqual(training, trained)
        self.assertTrue(training.feature_weights)
        with self.assertRaises(AccessError):
            self.env['mautomate.predictive.model'].action_train()

    @users('pred_manager')
    def test_manager_trains(self):
        before = self.train()
        action = self.env['mautomate.predictive.model'].action_train()
        self.assertEqual(action['tag'], 'display_notification')
        self.assertIn("Trained on", action['params']['message'])
        training = self.env['mautomate.predictive.model'].search([])
        self.assertNotEqual(training, before)
        self.assertGreaterEqual(training.training_size, 300)

    @users('admin')
    def test_settings_show_and_train(self):
        before = self.train()
        settings = self.env['res.config.settings'].create({})
        self.assertEqual(settings.mautomate_predictive_training_size, before.training_size)
        self.assertEqual(settings.mautomate_predictive_auc, before.auc)
        self.assertEqual(settings.mautomate_predictive_odoo_auc, before.odoo_auc)
        self.assertEqual(settings.mautomate_predictive_date, before.training_date)
        arch = settings.get_views([(False, 'form')])['views']['form']['arch']
        self.assertIn('action_mautomate_train', arch)
        self.assertIn('mautomate_predictive_auc', arch)
        action = settings.action_mautomate_train()
        self.assertIn("Trained on", action['params']['message'])
        training = self.env['mautomate.predictive.model'].search([])
        self.assertNotEqual(training, before)
        self.assertEqual(self.env['res.config.settings'].create({}).mautomate_predictive_training_size, training.training_size)
        self.assertEqual(settings.action_mautomate_open_trainings()['res_model'], 'mautomate.predictive.model')
