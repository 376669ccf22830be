from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    # Events logged before events had a company get the one of their API key, lead or website.
    env = api.Environment(cr, SUPERUSER_ID, {})
    env['mautomate.event']._backfill_company()
    # E-mail steps' mailings only hold their statistics: archived, as new steps' are, out of Email Marketing's lists.
    cr.execute("""
        UPDATE mailing_mailing SET active = FALSE
         WHERE active AND id IN (SELECT mailing_id FROM mautomate_flow_step WHERE mailing_id IS NOT NULL)
    """)
