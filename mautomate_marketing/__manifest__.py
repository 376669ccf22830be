{
    'name': 'Marketing Automation (mautomate)',
    'version': '18.0.1.0.0',
    'author': 'mautomate_marketing',
    'category': 'Marketing/Marketing Automation',
    'summary': 'Track every touch of a contact (website, e-mail, other sites, API) on one timeline, and score leads',
    'depends': ['crm', 'website_crm', 'mass_mailing', 'website_mass_mailing', 'sms'],
    # The predictive probability learns with scikit-learn (PyPI distribution name, as Odoo checks it).
    'external_dependencies': {'python': ['scikit-learn']},
    'data': [
        'security/mautomate_security.xml',
        'security/ir.model.access.csv',
        'data/ir_cron_data.xml',
        'data/mail_activity_type_data.xml',
        'views/mautomate_templates.xml',
        'views/mautomate_event_views.xml',
        'views/mautomate_api_key_views.xml',
        'views/mautomate_score_rule_views.xml',
        'views/mautomate_score_entry_views.xml',
        'views/mautomate_flow_views.xml',
        'views/mautomate_flow_enroll_views.xml',
        'views/res_partner_views.xml',
        'views/crm_lead_views.xml',
        'views/res_config_settings_views.xml',
        'views/mautomate_menus.xml',
        'views/mautomate_predictive_model_views.xml',
    ],
    'demo': [
        'demo/mautomate_event_demo.xml',
        'demo/mautomate_scoring_demo.xml',
        'demo/mautomate_predictive_demo.xml',
        'demo/mautomate_flow_demo.xml',
    ],
    'assets': {
        'web.assets_backend': [
            'mautomate_marketing/static/src/components/**/*',
        ],
        'web.assets_tests': [
            'mautomate_marketing/static/tests/tours/**/*',
        ],
    },
    'application': True,
    'license': 'LGPL-3',
}
