import logging
import math
import random
import time
from datetime import timedelta

from odoo import api, fields, models, modules, tools
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from .mautomate_event import EVENT_TYPES

_logger = logging.getLogger(__name__)

# Training needs this many won and lost leads, and this many of each outcome.
MIN_TRAINING_LEADS = 20
MIN_LEADS_PER_OUTCOME = 5
# A quarter of the closed leads, drawn by outcome, is held out to measure both AUCs.
HELD_OUT_SHARE = 0.25
RANDOM_SEED = 42
# Inverse regularisation strengths the logistic regression chooses from.
REGULARISATION_CS = [0.01, 0.1, 1.0, 10.0]
# Features are read and predictions written for this many leads per SQL statement.
BATCH_SIZE = 5000
RECENT_DAYS = 30
MAX_DAYS_SINCE_EVENT = 365
PARAMETERS_VERSION = 1

# Events the CRM logs about the lead's own progress (a stage change on winning) would give the outcome away:
# features read what people did, not these.
NOT_BEHAVIOUR_EVENT_TYPES = ('stage_change',)
NOT_BEHAVIOUR_SOURCES = ('crm',)
BEHAVIOUR_EVENT_TYPES = [event_type for event_type, _label in EVENT_TYPES if event_type not in NOT_BEHAVIOUR_EVENT_TYPES]
# Columns of the feature query, in its SELECT order. Counts go through log(1 + n), days are capped.
COUNT_FEATURES = ['events', *BEHAVIOUR_EVENT_TYPES, 'events_recent']
FIT_FEATURES = ['has_country', 'has_company_name', 'has_phone', 'has_job_position', 'is_company', 'has_email']
FEATURES = [*COUNT_FEATURES, 'days_since_last_event', *FIT_FEATURES]


class NotEnoughLeads(UserError):
    """ Too few won and lost leads to learn from: said to the user, logged by the cron. """


class MautomatePredictiveModel(models.Model):
    """ One training of the predictive probability: a logistic regression learnt from won and lost
    leads, on their behaviour in the event log and their fit fields. The latest one is active and
    predicts crm.lead.mautomate_probability. """
    _name = 'mautomate.predictive.model'
    _description = 'Predictive Probability Training'
    _order = 'training_date DESC, id DESC'

    training_date = fields.Datetime('Trained On', required=True, readonly=True, default=fields.Datetime.now)
    active = fields.Boolean(default=True, readonly=True, help="The latest training predicts the leads' probability.")
    training_size = fields.Integer(readonly=True, help="Won and lost leads learnt from.")
    won_count = fields.Integer('Won Leads', readonly=True)
    lost_count = fields.Integer('Lost Leads', readonly=True)
    held_out_size = fields.Integer('Held-out Leads', readonly=True,
                                   help="Closed leads kept out of the fit to measure both AUCs.")
    auc = fields.Float('AUC', digits=(16, 3), readonly=True,
                       help="Area under the ROC curve on the held-out leads: 0.5 is a coin toss, 1 ranks every "
                            "won lead above every lost one.")
    odoo_auc = fields.Float("Odoo's AUC", digits=(16, 3), readonly=True,
                            help="AUC of Odoo's own automated probability on the same held-out leads, computed as for "
                                 "an open lead in the first stage (a closed lead's stored value is 100 or 0).")
    training_seconds = fields.Float('Training Time (s)', digits=(16, 2), readonly=True)
    predicted_count = fields.Integer('Open Leads Predicted', readonly=True)
    parameters = fields.Json(readonly=True, help="The learnt model: features, standardisation and coefficients.")
    feature_weights = fields.Text(compute='_compute_feature_weights')

    @api.depends('training_date')
    def _compute_display_name(self):
        for training in self:
            training.display_name = self.env._("Training of %(date)s",
                                               date=tools.format_datetime(self.env, training.training_date))

    @api.depends('parameters')
    def _compute_feature_weights(self):
        labels = self._feature_labels()
        for training in self:
            params = training.parameters or {}
            weights = sorted(zip(params.get('features', []), params.get('coef', []), strict=True),
                             key=lambda weight: -abs(weight[1]))
            training.feature_weights = '\n'.join(
                f"{coef:+.2f}  {labels.get(name, name)}" for name, coef in weights) or False

    @api.model
    def _feature_labels(self):
        event_labels = dict(self.env['mautomate.event']._fields['event_type']._description_selection(self.env))
        return {
            'events': self.env._("Events"),
            **{event_type: self.env._("%(type)s (count)", type=event_labels[event_type]) for event_type in BEHAVIOUR_EVENT_TYPES},
            'events_recent': self.env._("Events in the last %(days)s days", days=RECENT_DAYS),
            'days_since_last_event': self.env._("Days since the last event"),
            'has_country': self.env._("Country set"),
            'has_company_name': self.env._("Company set"),
            'has_phone': self.env._("Phone set"),
            'has_job_position': self.env._("Job position set"),
            'is_company': self.env._("Contact is a company"),
            'has_email': self.env._("E-mail set"),
        }

    # ------------------------------------------------------------
    # Features, set-based
    # ------------------------------------------------------------

    @api.model
    def _lead_features(self, lead_ids):
        """ Features of the leads, from one SQL query per batch.

        A lead's events are those its Timeline shows: its own, its contact's, those of contacts with
        its e-mail and those of its website visitors, less the CRM's own (NOT_BEHAVIOUR_*). A won or
        lost lead is seen as it was when it closed: events after its closing date are ignored.

        :return: (ids, matrix with a row per lead and a column per FEATURES, outcomes: 1 won, 0 lost,
                  None open), rows in the order of ids
        """
        import numpy  # scikit-learn's numpy: loaded when a model is used, not at server start

        self.env['crm.lead'].flush_model()
        self.env['res.partner'].flush_model(['email_normalized', 'country_id', 'is_company', 'parent_id'])
        self.env['mautomate.event'].flush_model(['partner_id', 'lead_id', 'visitor_id', 'event_type', 'occurred_at'])
        now = fields.Datetime.now()
        type_counts = SQL(', ').join(
            SQL("COUNT(ev.id) FILTER (WHERE ev.event_type = %s)", event_type) for event_type in BEHAVIOUR_EVENT_TYPES)
        ids, rows, outcomes = [], [], []
        for batch in tools.split_every(BATCH_SIZE, sorted(set(lead_ids)), list):
            self.env.cr.execute(SQL("""
                WITH lead AS (
                    SELECT l.id, l.partner_id, l.email_normalized,
                           CASE WHEN l.active AND l.probability >= 100 THEN 1
                                WHEN NOT l.active AND l.probability = 0 THEN 0 END AS outcome,
                           CASE WHEN (l.active AND l.probability >= 100) OR (NOT l.active AND l.probability = 0)
                                THEN COALESCE(l.date_closed, l.write_date) END AS closed_at,
                           (l.country_id IS NOT NULL OR p.country_id IS NOT NULL)::int AS has_country,
                           (COALESCE(l.partner_name, '') != '' OR COALESCE(p.is_company, FALSE)
                            OR p.parent_id IS NOT NULL)::int AS has_company_name,
                           (COALESCE(l.phone, '') != '' OR COALESCE(l.mobile, '') != '')::int AS has_phone,
                           (COALESCE(l.function, '') != '')::int AS has_job_position,
                           COALESCE(p.is_company, FALSE)::int AS is_company,
                           (l.email_normalized IS NOT NULL)::int AS has_email
                      FROM crm_lead l
                 LEFT JOIN res_partner p ON p.id = l.partner_id
                     WHERE l.id = ANY(%(ids)s)
                ), person AS (
                    SELECT id AS lead_id, partner_id FROM lead WHERE partner_id IS NOT NULL
                     UNION
                    SELECT lead.id, contact.id
                      FROM lead JOIN res_partner contact ON contact.email_normalized = lead.email_normalized
                ), lead_event AS (
                    SELECT person.lead_id, e.id, e.event_type, e.occurred_at, e.source
                      FROM person JOIN mautomate_event e ON e.partner_id = person.partner_id
                     UNION
                    SELECT e.lead_id, e.id, e.event_type, e.occurred_at, e.source
                      FROM mautomate_event e WHERE e.lead_id = ANY(%(ids)s)
                     UNION
                    SELECT rel.crm_lead_id, e.id, e.event_type, e.occurred_at, e.source
                      FROM crm_lead_website_visitor_rel rel
                      JOIN mautomate_event e ON e.visitor_id = rel.website_visitor_id
                     WHERE rel.crm_lead_id = ANY(%(ids)s)
                )
                SELECT lead.id, lead.outcome, COUNT(ev.id), %(type_counts)s,
                       COUNT(ev.id) FILTER (WHERE ev.occurred_at >= COALESCE(lead.closed_at, %(now)s) - %(recent)s),
                       EXTRACT(EPOCH FROM COALESCE(lead.closed_at, %(now)s) - MAX(ev.occurred_at)) / 86400,
                       lead.has_country, lead.has_company_name, lead.has_phone, lead.has_job_position,
                       lead.is_company, lead.has_email
                  FROM lead
             LEFT JOIN lead_event ev ON ev.lead_id = lead.id
                                    AND (lead.closed_at IS NULL OR ev.occurred_at <= lead.closed_at)
                                    AND ev.event_type != ALL(%(not_types)s) AND ev.source != ALL(%(not_sources)s)
              GROUP BY lead.id, lead.outcome, lead.closed_at, lead.has_country, lead.has_company_name,
                       lead.has_phone, lead.has_job_position, lead.is_company, lead.has_email
              ORDER BY lead.id
            """, ids=batch, type_counts=type_counts, now=now, recent=timedelta(days=RECENT_DAYS),
                not_types=list(NOT_BEHAVIOUR_EVENT_TYPES), not_sources=list(NOT_BEHAVIOUR_SOURCES)))
            for lead_id, outcome, *values in self.env.cr.fetchall():
                ids.append(lead_id)
                outcomes.append(outcome)
                rows.append([float(value) if value is not None else math.nan for value in values])
        matrix = numpy.array(rows, dtype=float).reshape(len(rows), len(FEATURES))
        counts = len(COUNT_FEATURES)
        matrix[:, :counts] = numpy.log1p(matrix[:, :counts])
        days = matrix[:, counts]
        matrix[:, counts] = numpy.clip(numpy.nan_to_num(days, nan=MAX_DAYS_SINCE_EVENT), 0, MAX_DAYS_SINCE_EVENT)
        return ids, matrix, outcomes

    # ------------------------------------------------------------
    # Training
    # ------------------------------------------------------------

    @api.model
    def _closed_leads(self, lead_domain=None):
        """ {lead id: 1 won, 0 lost} of the won and lost leads (within lead_domain, if given). """
        self.env['crm.lead'].flush_model(['active', 'probability'])
        self.env.cr.execute("""
            SELECT id, (probability >= 100)::int FROM crm_lead
             WHERE (active AND probability >= 100) OR (NOT active AND probability = 0)
        """)
        outcomes = dict(self.env.cr.fetchall())
        if lead_domain is not None:
            within = self.env['crm.lead'].with_context(active_test=False).sudo().search(
                [*lead_domain, ('id', 'in', list(outcomes))])
            outcomes = {lead_id: outcomes[lead_id] for lead_id in within.ids}
        return outcomes

    @api.model
    def _odoo_probabilities(self, lead_ids):
        """ Odoo's automated probability (crm's naive Bayes) of the leads, computed as for open leads in the first
        stage, so that it does not know their outcome either. None where Odoo cannot compute one. """
        first_stage = self.env['crm.stage'].search([('team_id', '=', False)], order='sequence, id', limit=1)
        leads = self.env['crm.lead'].with_context(active_test=False, mautomate_pls_stage_id=first_stage.id).browse(lead_ids)
        probabilities = leads._pls_get_naive_bayes_probabilities()
        return [probabilities.get(lead_id) for lead_id in lead_ids]

    @api.model
    def _train(self, lead_domain=None, auto_commit=False):
        """ Learn from the won and lost leads (within lead_domain, if given), measure both AUCs on a held-out
        quarter, store the training as the active one and predict every open lead.

        :raise NotEnoughLeads: with fewer than MIN_TRAINING_LEADS won and lost leads or MIN_LEADS_PER_OUTCOME
                               of either
        """
        # scikit-learn takes a second to import: only when a model is trained.
        import numpy
        import sklearn
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self = self.sudo()
        started = time.perf_counter()
        outcomes = self._closed_leads(lead_domain)
        won = sum(outcomes.values())
        lost = len(outcomes) - won
        if len(outcomes) < MIN_TRAINING_LEADS or min(won, lost) < MIN_LEADS_PER_OUTCOME:
            raise NotEnoughLeads(self.env._(
                "The predictive probability learns from won and lost leads: it needs at least %(total)s of them, "
                "at least %(each)s won and %(each)s lost. There are %(won)s won and %(lost)s lost leads.",
                total=MIN_TRAINING_LEADS, each=MIN_LEADS_PER_OUTCOME, won=won, lost=lost))
        ids, matrix, labels = self._lead_features(list(outcomes))
        labels = numpy.array(labels, dtype=int)
        train_rows, test_rows = train_test_split(
            numpy.arange(len(ids)), test_size=HELD_OUT_SHARE, stratify=labels, random_state=RANDOM_SEED)

        def fit(rows):
            # The regularisation is chosen by cross-validated log-loss: strong on a few dozen leads (probabilities
            # stay modest), light on thousands.
            regression = LogisticRegressionCV(Cs=REGULARISATION_CS, cv=3, scoring='neg_log_loss', max_iter=1000,
                                              l1_ratios=(0,), use_legacy_attributes=False)
            return make_pipeline(StandardScaler(), regression).fit(matrix[rows], labels[rows])

        auc = roc_auc_score(labels[test_rows], fit(train_rows).predict_proba(matrix[test_rows])[:, 1])
        odoo_probabilities = self._odoo_probabilities([ids[row] for row in test_rows])
        # Where Odoo has no figure (no won or lost lead of the team in its table), it knows nothing: a coin toss.
        odoo_auc = roc_auc_score(labels[test_rows], [50.0 if value is None else value for value in odoo_probabilities])
        # The held-out quarter only measures: the model kept learns from every closed lead.
        pipeline = fit(numpy.arange(len(ids)))
        scaler, regression = pipeline.named_steps['standardscaler'], pipeline.named_steps['logisticregressioncv']
        training = self.create({
            'training_size': len(ids),
            'won_count': won,
            'lost_count': lost,
            'held_out_size': len(test_rows),
            'auc': auc,
            'odoo_auc': odoo_auc,
            'training_seconds': time.perf_counter() - started,
            'parameters': {
                'version': PARAMETERS_VERSION,
                'estimator': 'StandardScaler + LogisticRegressionCV',
                'C': float(regression.C_),
                'sklearn': sklearn.__version__,
                'features': FEATURES,
                'mean': scaler.mean_.tolist(),
                'scale': scaler.scale_.tolist(),
                'coef': regression.coef_[0].tolist(),
                'intercept': float(regression.intercept_[0]),
            },
        })
        self.search([('id', '!=', training.id)]).active = False
        _logger.info("Predictive probability trained on %s won and %s lost leads in %.1f s: AUC %.3f, Odoo's %.3f",
                     won, lost, training.training_seconds, auc, odoo_auc)
        if auto_commit:
            self.env.cr.commit()  # pylint: disable=invalid-commit
        training.predicted_count = training._predict_open_leads(auto_commit=auto_commit)
        return training

    @api.model
    def action_train(self):
        """ Train now (Settings, the trainings list): managers only. """
        if not self.env.user.has_group('mautomate_marketing.group_mautomate_manager'):
            raise AccessError(self.env._("Only Marketing Automation managers can train the predictive probability."))
        training = self._train()
        return {
            'type': 'ir.actions.client',
            'tag': 'display_notification',
            'params': {
                'type': 'success',
                'message': self.env._(
                    "Trained on %(size)s won and lost leads: AUC %(auc).3f, Odoo's automated probability %(odoo_auc).3f. "
                    "%(count)s open leads predicted.",
                    size=training.training_size, auc=training.auc, odoo_auc=training.odoo_auc,
                    count=training.predicted_count),
                'next': {'type': 'ir.actions.client', 'tag': 'soft_reload'},
            },
        }

    @api.model
    def _cron_train(self):
        """ Weekly: retrain, then predict the open leads in committed batches. """
        try:
            self._train(auto_commit=not modules.module.current_test)
        except NotEnoughLeads as error:
            _logger.info("Predictive probability not trained: %s", error.args[0])

    @api.model
    def _benchmark(self, lead_domain=None):
        """ For bench/scoring.py: (training seconds, AUC, Odoo's AUC) of a new training. """
        training = self._train(lead_domain=lead_domain)
        return training.training_seconds, training.auc, training.odoo_auc

    # ------------------------------------------------------------
    # Prediction, set-based
    # ------------------------------------------------------------

    def _predict_matrix(self, matrix):
        """ Probabilities in % of the rows of a feature matrix, with numpy only. """
        import numpy

        self.ensure_one()
        params = self.parameters
        columns = [FEATURES.index(name) if name in FEATURES else None for name in params['features']]
        selected = numpy.column_stack([
            matrix[:, column] if column is not None else numpy.zeros(len(matrix)) for column in columns])
        scores = ((selected - params['mean']) / params['scale']) @ numpy.array(params['coef']) + params['intercept']
        # Beyond ±40 the probability rounds to 0 or 100 anyway; exp() would overflow.
        return numpy.round(100.0 / (1.0 + numpy.exp(-numpy.clip(scores, -40, 40))), 2)

    @api.model
    def _predict_leads(self, lead_ids, auto_commit=False):
        """ Write mautomate_probability of the leads with the active training: one query to read the features
        and one UPDATE per batch. Won leads get 100, lost ones 0, as Odoo's automated probability.
        Returns the number of leads predicted. """
        training = self.sudo().search([], limit=1)
        lead_ids = [lead_id for lead_id in lead_ids if isinstance(lead_id, int)]
        if not training or not lead_ids:
            return 0
        for batch in tools.split_every(BATCH_SIZE, lead_ids, list):
            ids, matrix, outcomes = self._lead_features(batch)
            if not ids:
                continue
            probabilities = training._predict_matrix(matrix).tolist()
            probabilities = [100.0 * outcome if outcome is not None else probability
                             for outcome, probability in zip(outcomes, probabilities, strict=True)]
            self.env.cr.execute(SQL("""
                UPDATE crm_lead lead SET mautomate_probability = new.probability
                  FROM unnest(%s::int[], %s::float8[]) AS new(id, probability)
                 WHERE lead.id = new.id AND lead.mautomate_probability IS DISTINCT FROM new.probability
            """, ids, probabilities))
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env['crm.lead'].invalidate_model(['mautomate_probability'])
        return len(lead_ids)

    def _predict_open_leads(self, auto_commit=False):
        """ After a training: every open lead, in batches; closed ones get 100 or 0. Returns the open leads' count. """
        self.env['crm.lead'].flush_model(['active', 'probability', 'mautomate_probability'])
        self.env.cr.execute("""
            UPDATE crm_lead SET mautomate_probability = CASE WHEN active THEN 100 ELSE 0 END
             WHERE ((active AND probability >= 100) OR (NOT active AND probability = 0))
               AND mautomate_probability IS DISTINCT FROM CASE WHEN active THEN 100 ELSE 0 END
        """)
        self.env.cr.execute("SELECT id FROM crm_lead WHERE active AND (probability IS NULL OR probability < 100) ORDER BY id")
        open_ids = [row[0] for row in self.env.cr.fetchall()]
        return self._predict_leads(open_ids, auto_commit=auto_commit)

    # ------------------------------------------------------------
    # Demo data
    # ------------------------------------------------------------

    @api.model
    def _load_demo_history(self, count=48):
        """ Demo: closed leads whose behaviour tells won from lost (more clicks, forms and pricing pages,
        recent activity), so that the demo database has a trained model. Deterministic. """
        rng = random.Random(RANDOM_SEED)
        Lead = self.env['crm.lead'].with_context(tracking_disable=True, mail_create_nolog=True, mail_create_nosubscribe=True)
        companies = ['Alder', 'Birch', 'Cedar', 'Elm', 'Hazel', 'Juniper', 'Larch', 'Maple', 'Oak', 'Pine', 'Rowan', 'Willow']
        needs = ['office chairs', 'standing desks', 'meeting room set', 'storage cabinets']
        countries = [self.env.ref('base.be').id, self.env.ref('base.se').id, self.env.ref('base.dk').id, False]
        now = fields.Datetime.now()
        lead_vals, behaviours = [], []
        for index in range(count):
            company = f"{companies[index % len(companies)]} {['Studio', 'Group', 'Partners', 'Labs'][index // len(companies) % 4]}"
            engagement = rng.gauss(0, 1)
            won = rng.random() < 1 / (1 + math.exp(-2.5 * engagement))
            email = f"buyer{index}@{company.lower().replace(' ', '-')}.example.com"
            lead_vals.append({
                'name': f"{needs[index % len(needs)].capitalize()} for {company}",
                'type': 'opportunity',
                'partner_name': company,
                'contact_name': f"Buyer {index + 1}",
                'email_from': email,
                'country_id': rng.choice(countries),
                'user_id': False,
            })
            behaviours.append((won, engagement, email))
        leads = Lead.create(lead_vals)
        events = []
        for lead, (_won, engagement, _email) in zip(leads, behaviours, strict=True):
            last = now - timedelta(days=max(1.0, 10 - 8 * engagement + rng.uniform(0, 6)))
            pages = ['/shop', '/pricing', '/contactus', '/blog', '/jobs']
            for step in range(max(0, round(4 + 3 * engagement + rng.gauss(0, 1)))):
                page = pages[rng.randrange(3 if engagement > 0 else 5)]
                events.append({'event_type': 'page_view', 'url': f"http://localhost:8069{page}", 'name': page.strip('/').title(),
                               'lead_id': lead.id, 'occurred_at': last - timedelta(hours=3 * step)})
            if engagement + rng.gauss(0, 0.7) > 0.3:
                events.append({'event_type': 'form_submit', 'source': 'website', 'name': 'Contact us',
                               'url': 'http://localhost:8069/contactus', 'lead_id': lead.id, 'occurred_at': last})
            for mail in range(3):
                sent = last - timedelta(days=7 * (mail + 1))
                events.append({'event_type': 'email_sent', 'source': 'email', 'name': 'New office chairs are in',
                               'lead_id': lead.id, 'occurred_at': sent})
                if engagement + rng.gauss(0, 1) > -0.5:
                    events.append({'event_type': 'email_open', 'source': 'email', 'name': 'New office chairs are in',
                                   'lead_id': lead.id, 'occurred_at': sent + timedelta(hours=2)})
                if engagement + rng.gauss(0, 1) > 0.5:
                    events.append({'event_type': 'email_click', 'source': 'email', 'name': 'New office chairs are in',
                                   'lead_id': lead.id, 'occurred_at': sent + timedelta(hours=2, minutes=1)})
        self.env['mautomate.event']._ingest(events)
        won_leads = Lead.browse([lead.id for lead, (won, _engagement, _email) in zip(leads, behaviours, strict=True) if won])
        won_leads.action_set_won()
        (leads - won_leads).action_set_lost()
        return leads

