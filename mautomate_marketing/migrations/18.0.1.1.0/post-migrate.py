from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    # Events logged before events had a company get the one of their API key, lead or website.
    env = api.Environment(cr, SUPERUSER_ID, {})
    env['mautomate.event']._backfill_company()
