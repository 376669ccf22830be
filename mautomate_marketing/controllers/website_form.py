from odoo.addons.website_crm.controllers.website_form import WebsiteForm


class MautomateWebsiteForm(WebsiteForm):

    def insert_record(self, request, model, values, custom, meta=None):
        model_name = model.sudo().model
        visitor = request.env['website.visitor']
        # Read what the visitor typed before super(): a mail.mail form replaces email_from with the company's.
        identity = visitor._mautomate_form_identity(model_name, values)
        partner = None
        keep_partner_fields = False
        if model_name == 'crm.lead':
            partner = visitor._mautomate_form_partner(model_name, identity)
            # An anonymous visitor's lead gets the contact of the e-mail typed, keeping both sides' values.
            if partner and request.env.user._is_public() and not values.get('partner_id'):
                values['partner_id'] = partner.id
                keep_partner_fields = True
                request.update_context(mautomate_keep_partner_fields=True)
        try:
            record_id = super().insert_record(request, model, values, custom, meta=meta)
        finally:
            if keep_partner_fields:
                request.update_context(mautomate_keep_partner_fields=False)
        if partner is None:
            partner = visitor._mautomate_form_partner(model_name, identity)
        visitor._mautomate_track_form_submit(model_name, record_id, partner, named=bool(identity[0]))
        return record_id
