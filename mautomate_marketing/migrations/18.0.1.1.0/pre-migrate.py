from odoo.tools import sql

# Records made before records had a company stay shared (as they were): their column is created empty here, before
# the ORM would create it and fill it with the field's default, the current company.
SHARED_TABLES = ('mautomate_flow', 'mautomate_score_rule', 'mautomate_form', 'mautomate_popup', 'mautomate_cta',
                 'mautomate_ab_test', 'mautomate_api_key')


def migrate(cr, version):
    for table in SHARED_TABLES:
        if not sql.column_exists(cr, table, 'company_id'):
            sql.create_column(cr, table, 'company_id', 'int4')
