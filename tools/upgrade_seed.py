# Run by tools/test.sh --upgrade in `odoo-bin shell` (which gives `env`), on the module of the previous release:
# data made through that release's code, beyond its demo data, for the upgrade to keep. Only what is made here
# and by the module's own crons; nothing is sent (no webhook step, e-mails stay queued).
from datetime import timedelta

from odoo import fields


def seed(env):
    now = fields.Datetime.now()
    Event = env['mautomate.event']
    marketer = env['res.users'].with_context(no_reset_password=True).create({
        'name': 'Upgrade Marketer', 'login': 'upgrade.marketer', 'email': 'upgrade.marketer@example.com',
        'groups_id': [(4, env.ref('mautomate_marketing.group_mautomate_manager').id)],
    })
    people = env['res.partner'].create([
        {'name': f'Upgrade Person {index}', 'email': f'upgrade.person{index}@example.com'} for index in range(1, 4)])

    env['mautomate.score.rule'].create({
        'name': 'Upgrade: read the docs', 'rule_type': 'behaviour', 'event_type': 'page_view', 'url_pattern': '/docs',
        'points': 7})
    api_key = env['mautomate.api.key'].create({'name': 'Upgrade webshop'})
    form = env['mautomate.form'].create({'name': 'Upgrade newsletter', 'consent_text': 'Send me news.'})
    env['mautomate.consent'].create([{
        'partner_id': person.id, 'form_id': form.id, 'email': person.email, 'text': form.consent_text,
        'ip_address': '127.0.0.1', 'state': 'confirmed'} for person in people[:2]])

    # Events: known people's pages and API events; a browser's anonymous pages, then identified the old way (its
    # history attached to a contact); the custom event that enrols its contact in the demo "Parcel delivered" flow.
    events = []
    for index, person in enumerate(people):
        browser = f'upgrade-browser-{index}'
        events += [
            {'occurred_at': now - timedelta(days=3, minutes=index), 'event_type': 'page_view', 'source': 'website',
             'url': 'https://www.example.com/docs/start', 'name': 'Getting started', 'anonymous_id': browser},
            {'occurred_at': now - timedelta(days=2, minutes=index), 'event_type': 'page_view', 'source': 'website',
             'url': 'https://www.example.com/pricing', 'name': 'Pricing', 'anonymous_id': browser, 'partner_id': person.id},
            {'occurred_at': now - timedelta(days=1, minutes=index), 'event_type': 'custom', 'source': 'api',
             'name': 'Parcel delivered', 'partner_id': person.id, 'api_key_id': api_key.id, 'value': 10.0 * (index + 1),
             'payload': {'order': f'UPG-{index}'}},
        ]
    events.append({'occurred_at': now - timedelta(hours=5), 'event_type': 'page_view', 'source': 'website',
                   'url': 'https://www.example.com/docs/api', 'name': 'API', 'anonymous_id': 'upgrade-browser-anonymous'})
    Event._ingest(events)
    Event._attach_anonymous_history(people[0], anonymous_ids=['upgrade-browser-0'])

    # A flow of the marketer, and a demo flow made by OdooBot, both without a responsible where releases allowed it.
    flow = env['mautomate.flow'].with_user(marketer).create({'name': 'Upgrade: onboarding', 'target': 'partner'})
    if not env['mautomate.flow']._fields['user_id'].required:
        (flow | env.ref('mautomate_marketing.mautomate_flow_demo_parcel_delivered')).write({'user_id': False})

    # The module's crons, once each: score awards (ledger), flow steps (traces), trigger scans, retention, training.
    crons = env['ir.model.data'].search([('module', '=', 'mautomate_marketing'), ('model', '=', 'ir.cron')])
    for cron in env['ir.cron'].browse(crons.mapped('res_id')):
        cron.method_direct_trigger()
    env.cr.commit()


seed(env)  # noqa: F821 (odoo-bin shell gives env)
