/** @odoo-module **/
import options from "@web_editor/js/editor/snippets.options";

/**
 * The "Marketing Form" block's option: which form it shows (like the newsletter block's list picker).
 */
options.registry.MautomateFormBlock = options.Class.extend({
    init() {
        this._super(...arguments);
        this.orm = this.bindService("orm");
        this.forms = [];
    },

    onBuilt() {
        this._super(...arguments);
        if (this.forms.length && !this.$target[0].dataset.formSlug) {
            this._setForm(this.forms[0].slug);
        }
    },

    async selectDataAttribute(previewMode, widgetValue, params) {
        await this._super(...arguments);
        if (params.attributeName === "formSlug") {
            this._setForm(widgetValue);
        }
    },

    _setForm(slug) {
        const form = this.forms.find((form) => form.slug === slug);
        this.$target[0].dataset.formSlug = slug;
        const link = this.$target[0].querySelector(".o_mautomate_form_link");
        if (link && form) {
            link.setAttribute("href", `/mautomate/form/${slug}`);
            link.textContent = form.name;
        }
    },

    async _renderCustomXML(uiFragment) {
        this.forms = await this.orm.searchRead("mautomate.form", [], ["slug", "name"], {
            context: this.options.recordInfo.context,
        });
        const selectEl = uiFragment.querySelector('we-select[data-attribute-name="formSlug"]');
        for (const form of this.forms) {
            const button = document.createElement("we-button");
            button.dataset.selectDataAttribute = form.slug;
            button.textContent = form.name;
            selectEl.appendChild(button);
        }
    },
});
