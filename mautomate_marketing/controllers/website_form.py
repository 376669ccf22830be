from odoo.addons.website_crm.controllers.website_form import WebsiteForm


class MautomateWebsiteForm(WebsiteForm):

    def insert_record(self, request, model, values, custom, meta=None):
        record_id = super().insert_record(request, model, values, custom, meta=meta)
        request.env['website.visitor']._track_form_submit(model.sudo().model, record_id, values)
        return record_id
