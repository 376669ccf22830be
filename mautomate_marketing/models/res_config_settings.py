import secrets

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

IDENTIFY_SECRET_PARAM = 'mautomate_marketing.identify_secret'
HOURS = [(str(hour), f'{hour:02d}:00') for hour in range(24)]


class ResConfigSettings(models.TransientModel):
    _inherit = 'res.config.settings'

    mautomate_retention_days = fields.Integer(
        'Keep Events (days)', config_parameter='mautomate_marketing.retention_days', default=0,
        help="Events older than this are deleted every night. 0 keeps them forever.")
    mautomate_consent_proof_days = fields.Integer(
        'Keep Consent Proof (days)', config_parameter='mautomate_marketing.consent_proof_days', default=1095,
        help="After a contact's tracking data is erased, its consents keep their proof (e-mail, IP address) this many "
             "days, then are anonymised every night.")
    mautomate_track_internal_users = fields.Boolean(
        'Track Internal Users', config_parameter='mautomate_marketing.track_internal_users',
        help="Also log the pages and forms of logged-in employees. Off by default: their browsing "
             "(the website editor included) is not customer behaviour.")
    mautomate_excluded_ips = fields.Char(
        'Excluded IP Addresses', config_parameter='mautomate_marketing.excluded_ips',
        help="Requests from these addresses or networks are not tracked, e.g. '203.0.113.7, 198.51.100.0/24'.")
    # Scoring (see mautomate.scoring.SCORING_PARAMS for the defaults)
    mautomate_score_half_life = fields.Integer(
        'Score Half-Life (days)', config_parameter='mautomate_marketing.score_half_life', default=30,
        help="Points count half after this many days, a quarter after twice as many. 0: points never fade.")
    mautomate_grade_fit_a = fields.Integer('Fit A from', config_parameter='mautomate_marketing.grade_fit_a', default=60)
    mautomate_grade_fit_b = fields.Integer('Fit B from', config_parameter='mautomate_marketing.grade_fit_b', default=30)
    mautomate_grade_fit_c = fields.Integer('Fit C from', config_parameter='mautomate_marketing.grade_fit_c', default=10)
    mautomate_grade_score_1 = fields.Integer('Engagement 1 from', config_parameter='mautomate_marketing.grade_score_1', default=100)
    mautomate_grade_score_2 = fields.Integer('Engagement 2 from', config_parameter='mautomate_marketing.grade_score_2', default=50)
    mautomate_grade_score_3 = fields.Integer('Engagement 3 from', config_parameter='mautomate_marketing.grade_score_3', default=20)
    mautomate_mql_score = fields.Integer(
        'MQL from Engagement', config_parameter='mautomate_marketing.mql_score', default=50,
        help="A contact or lead with at least this engagement and a good enough fit becomes marketing qualified "
             "and is handed to sales.")
    mautomate_sql_score = fields.Integer('SQL from Engagement', config_parameter='mautomate_marketing.sql_score', default=100)
    mautomate_mql_min_grade = fields.Selection(
        [('A', 'A'), ('B', 'B or better'), ('C', 'C or better'), ('D', 'Any fit')], 'Minimum Fit',
        config_parameter='mautomate_marketing.mql_min_grade', default='B')
    # Automation flows: limits on automated mail (read by mautomate.flow.engine._get_sending_policy)
    mautomate_flow_mail_cap = fields.Integer(
        'Automated E-mails per Contact per 7 Days', config_parameter='mautomate_marketing.flow_mail_cap', default=0,
        help="A flow's e-mail to a contact who already got this many automated e-mails in the last 7 days waits until "
             "the oldest of them is 7 days old. 0: no limit.")
    mautomate_quiet_hours = fields.Boolean(
        'Quiet Hours', config_parameter='mautomate_marketing.quiet_hours',
        help="No automated e-mail in these hours of the contact's time zone (else the company's): it waits for "
             "their end.")
    # Whole hours as selections: a float setting of 0 (midnight) would not be stored apart from its default.
    mautomate_quiet_hours_start = fields.Selection(HOURS, 'Quiet From', config_parameter='mautomate_marketing.quiet_hours_start',
                                                   default='21')
    mautomate_quiet_hours_end = fields.Selection(HOURS, 'Quiet Until', config_parameter='mautomate_marketing.quiet_hours_end',
                                                 default='8')
    # Hosts webhooks may call beyond the public Internet's ports 80 and 443 (read by mautomate.webhook.delivery).
    mautomate_outgoing_allowed_hosts = fields.Char(
        'Allowed Webhook Hosts', config_parameter='mautomate_marketing.outgoing_allowed_hosts', groups='base.group_system',
        help="Your own integration hosts, e.g. 'crm.internal.example.com, 10.0.0.5:8443': webhooks may call them on "
             "internal addresses; 'host:port' allows that port too. Others: only public addresses, ports 80 and 443.")
    mautomate_tracker_snippet = fields.Text('Tracker Snippet', compute='_compute_mautomate_tracker_snippet')
    mautomate_identify_secret = fields.Char('Identify Secret', compute='_compute_mautomate_identify_secret')
    mautomate_identify_origins = fields.Char(
        'Identify Origins', config_parameter='mautomate_marketing.identify_origins',
        help="The sites whose pages may call mautomateTracker.identify(), as their browsers name them "
             "(scheme, host and port), e.g. 'https://shop.example.com'. Pages of other sites are refused.")
    # Predictive probability: the active training, shown read-only
    mautomate_predictive_date = fields.Datetime('Trained On', compute='_compute_mautomate_predictive')
    mautomate_predictive_training_size = fields.Integer('Won and Lost Leads', compute='_compute_mautomate_predictive')
    mautomate_predictive_auc = fields.Float('AUC', digits=(16, 3), compute='_compute_mautomate_predictive')
    mautomate_predictive_odoo_auc = fields.Float("Odoo's AUC", digits=(16, 3), compute='_compute_mautomate_predictive',
                                                 help="Odoo's own automated probability on the same held-out leads.")

    @api.depends('company_id')
    def _compute_mautomate_tracker_snippet(self):
        snippet = self.env['mautomate.event']._get_tracker_snippet()
        for settings in self:
            settings.mautomate_tracker_snippet = snippet

    @api.depends('company_id')
    def _compute_mautomate_identify_secret(self):
        secret = self._mautomate_get_identify_secret() if self.env.user.has_group('mautomate_marketing.group_mautomate_manager') else False
        for settings in self:
            settings.mautomate_identify_secret = secret

    @api.model
    def _mautomate_get_identify_secret(self):
        """ The secret other sites' servers sign e-mails with for mautomateTracker.identify(), made on first use. """
        params = self.env['ir.config_parameter'].sudo()
        secret = params.get_param(IDENTIFY_SECRET_PARAM)
        if not secret:
            secret = secrets.token_hex(32)
            params.set_param(IDENTIFY_SECRET_PARAM, secret)
        return secret

    def action_mautomate_renew_identify_secret(self):
        if not self.env.user.has_group('mautomate_marketing.group_mautomate_manager'):
            raise AccessError(self.env._("Only Marketing Automation managers can renew the identify secret."))
        self.env['ir.config_parameter'].sudo().set_param(IDENTIFY_SECRET_PARAM, secrets.token_hex(32))

    @api.depends('company_id')
    def _compute_mautomate_predictive(self):
        training = self.env['mautomate.predictive.model'].sudo().search([], limit=1)
        for settings in self:
            settings.mautomate_predictive_date = training.training_date
            settings.mautomate_predictive_training_size = training.training_size
            settings.mautomate_predictive_auc = training.auc
            settings.mautomate_predictive_odoo_auc = training.odoo_auc

    def action_mautomate_train(self):
        return self.env['mautomate.predictive.model'].action_train()

    def action_mautomate_open_trainings(self):
        return self.env['ir.actions.act_window']._for_xml_id('mautomate_marketing.mautomate_predictive_model_action')

    def set_values(self):
        params = self.env['ir.config_parameter'].sudo()
        keys = [field.config_parameter for name, field in self._fields.items()
                if name.startswith(('mautomate_score_half', 'mautomate_grade_', 'mautomate_mql_', 'mautomate_sql_'))]
        before = [params.get_param(key) for key in keys]
        result = super().set_values()
        # New thresholds or half-life: every score, grade and stage follows, in the background.
        if before != [params.get_param(key) for key in keys]:
            self.env['mautomate.scoring']._trigger_recompute()
        return result

    @api.constrains('mautomate_score_half_life', 'mautomate_grade_fit_a', 'mautomate_grade_fit_b', 'mautomate_grade_fit_c',
                    'mautomate_grade_score_1', 'mautomate_grade_score_2', 'mautomate_grade_score_3')
    def _check_mautomate_grades(self):
        for settings in self:
            if settings.mautomate_score_half_life < 0:
                raise ValidationError(self.env._("The score half-life cannot be negative: use 0 for scores that never fade."))
            if not (settings.mautomate_grade_fit_a >= settings.mautomate_grade_fit_b >= settings.mautomate_grade_fit_c):
                raise ValidationError(self.env._("Fit grade thresholds must go down from A to C."))
            if not (settings.mautomate_grade_score_1 >= settings.mautomate_grade_score_2 >= settings.mautomate_grade_score_3):
                raise ValidationError(self.env._("Engagement grade thresholds must go down from 1 to 3."))

    @api.constrains('mautomate_retention_days')
    def _check_mautomate_retention_days(self):
        if any(settings.mautomate_retention_days < 0 for settings in self):
            raise ValidationError(self.env._("Event retention cannot be negative: use 0 to keep events forever."))

    @api.constrains('mautomate_consent_proof_days')
    def _check_mautomate_consent_proof_days(self):
        if any(settings.mautomate_consent_proof_days < 1 for settings in self):
            raise ValidationError(self.env._("Consent proof is kept at least one day."))

    @api.constrains('mautomate_flow_mail_cap')
    def _check_mautomate_flow_mail_cap(self):
        if any(settings.mautomate_flow_mail_cap < 0 for settings in self):
            raise ValidationError(self.env._("The e-mail limit per contact cannot be negative: use 0 for no limit."))
