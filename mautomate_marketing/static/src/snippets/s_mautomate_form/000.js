/** @odoo-module **/
import publicWidget from "@web/legacy/js/public/public_widget";
import { loadEmbeddedForm } from "@mautomate_marketing/js/mautomate_form_embed";

/**
 * The "Marketing Form" block: replaces its link to the form's page by the form for this visitor.
 */
publicWidget.registry.MautomateFormBlock = publicWidget.Widget.extend({
    selector: ".s_mautomate_form[data-form-slug]",
    disabledInEditableMode: true,

    start() {
        const slug = this.el.dataset.formSlug;
        const slot = this.el.querySelector(".o_mautomate_form_slot");
        if (slug && slot) {
            // Not awaited: the page never waits for the form.
            loadEmbeddedForm(slot, slug);
        }
        return this._super(...arguments);
    },
});
