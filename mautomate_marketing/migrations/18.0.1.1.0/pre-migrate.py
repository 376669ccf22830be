""" 18.0.1.1.0, before the module's models load: what earlier 18.0.1.0.0 databases have and this version drops,
the flows' responsible that this version requires, and the company columns of records that stay shared. """
from odoo import SUPERUSER_ID
from odoo.tools import sql

# Records made before records had a company stay shared (as they were): their column is created empty here, before
# the ORM would create it and fill it with the field's default, the current company.
SHARED_TABLES = ('mautomate_flow', 'mautomate_score_rule', 'mautomate_form', 'mautomate_popup', 'mautomate_cta',
                 'mautomate_ab_test', 'mautomate_api_key')


def migrate(cr, version):
    # Indexes replaced by others (a browser's events, a participant's open steps, its running entry, the ledger's
    # rule lookups served by the rule-event index), a table that locked e-mails before mautomate_lock, and the
    # ledger's log-access columns (it is written in SQL: every insert paid for them).
    cr.execute("""
        DROP INDEX IF EXISTS mautomate_event_anonymous_partner_idx;
        DROP INDEX IF EXISTS mautomate_flow_trace_pending_participant_idx;
        DROP INDEX IF EXISTS mautomate_flow_participant_running_uniq;
        DROP INDEX IF EXISTS mautomate_score_entry__rule_id_index;
        DROP TABLE IF EXISTS mautomate_email_lock;
        ALTER TABLE mautomate_score_entry DROP COLUMN IF EXISTS create_uid, DROP COLUMN IF EXISTS create_date,
                                          DROP COLUMN IF EXISTS write_uid, DROP COLUMN IF EXISTS write_date;
    """)
    # A flow's domains now run with its responsible's rights, and it must have one: a flow without takes its
    # creator, when a person (an active internal user), else the administrator; the ORM would put OdooBot,
    # whose rights are the superuser's.
    cr.execute("""
        SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin' AND model = 'res.users'
    """)
    admin_id = (cr.fetchone() or [SUPERUSER_ID])[0]
    cr.execute("""
        UPDATE mautomate_flow flow
           SET user_id = COALESCE((SELECT creator.id FROM res_users creator
                                    WHERE creator.id = flow.create_uid AND creator.id <> %(superuser)s
                                      AND creator.active AND NOT creator.share), %(admin)s)
         WHERE flow.user_id IS NULL
    """, {'superuser': SUPERUSER_ID, 'admin': admin_id})
    for table in SHARED_TABLES:
        if not sql.column_exists(cr, table, 'company_id'):
            sql.create_column(cr, table, 'company_id', 'int4')
