from odoo import api, models
from odoo.http import request


class LinkTrackerClick(models.Model):
    _inherit = 'link.tracker.click'

    @api.model_create_multi
    def create(self, vals_list):
        clicks = super().create(vals_list)
        # A mail link's click names its browser only when signed (its controller says which, None when not).
        browser_id = self.env.context.get('mautomate_browser_id')
        if 'mautomate_browser_id' not in self.env.context and request:
            browser_id = self.env['website.visitor']._mautomate_browser_id()
        for click in clicks:
            if click.mailing_trace_id:
                click.mailing_trace_id._mautomate_log_events('email_click', url=click.link_id.url, anonymous_id=browser_id)
        other_clicks = clicks.filtered(lambda click: not click.mailing_trace_id)
        self.env['mautomate.event'].sudo()._ingest([{
            'event_type': 'link_click',
            'source': 'email' if click.mass_mailing_id else 'website',
            'name': click.link_id.title or click.link_id.label or click.link_id.url,
            'url': click.link_id.url,
            'anonymous_id': browser_id,
            'campaign_id': click.campaign_id.id or None,
            'source_id': click.link_id.source_id.id or None,
            'medium_id': click.link_id.medium_id.id or None,
        } for click in other_clicks])
        return clicks
