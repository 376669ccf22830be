from odoo import models
from odoo.http import request


class IrHttp(models.AbstractModel):
    _inherit = 'ir.http'

    @classmethod
    def _register_website_track(cls, response):
        """ Log every website page a person opens, not only views flagged `track`. """
        result = super()._register_website_track(response)
        if request.env['website.visitor']._is_trackable_page_response(response):
            if request.env.cr.readonly:
                # Odoo 18 serves some routes on a read-only cursor: log on a cursor of our own.
                with request.env.registry.cursor() as cr:
                    request.env(cr=cr)['website.visitor']._track_page_view(response)
            else:
                request.env['website.visitor']._track_page_view(response)
        return result
