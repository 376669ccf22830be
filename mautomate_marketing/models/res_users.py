from odoo import api, models
from odoo.http import request


class ResUsers(models.Model):
    _inherit = 'res.users'

    @classmethod
    def authenticate(cls, db, credential, user_agent_env):
        """ Logging in on the website identifies the browser: its anonymous history (website visitor
        and Browser ID cookie) goes to the user's contact; internal users' contacts get none. """
        visitor = None
        if request and request.env:
            visitor = request.env['website.visitor']._get_visitor_from_request()
        auth_info = super().authenticate(db, credential, user_agent_env)
        if auth_info.get('uid') and request and request.env:
            env = api.Environment(request.env.cr, auth_info['uid'], {})
            Visitor = env['website.visitor'].sudo()
            browser_id = Visitor._mautomate_browser_id()
            visitors = visitor.exists() if visitor else Visitor
            if browser_id or visitors:
                env['mautomate.event'].sudo()._attach_anonymous_history(
                    env.user.partner_id, visitors=visitors, anonymous_ids=[browser_id])
            # A login proves the browser: its later events, logged out, are still the user's.
            env['mautomate.proven.browser'].sudo()._prove(browser_id, env.user.partner_id, 'login')
        return auth_info
