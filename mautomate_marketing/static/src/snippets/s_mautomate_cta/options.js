/** @odoo-module **/

import options from "@web_editor/js/editor/snippets.options";

/**
 * The Smart Call-to-Action block's option: pick the CTA. The block's link becomes the CTA's fallback line,
 * which visitors without JavaScript (and those who refused tracking) see.
 */
options.registry.MautomateCta = options.Class.extend({
    init() {
        this._super(...arguments);
        this.orm = this.bindService("orm");
    },

    async onBuilt() {
        await this._super(...arguments);
        if (this.ctas.length && !parseInt(this.$target[0].dataset.ctaId)) {
            this.$target[0].dataset.ctaId = this.ctas[0][0];
            await this._showFallback(this.ctas[0][0]);
        }
    },

    async selectDataAttribute(previewMode, widgetValue, params) {
        await this._super(...arguments);
        if (params.attributeName === "ctaId" && previewMode === false) {
            await this._showFallback(parseInt(widgetValue));
        }
    },

    async _showFallback(ctaId) {
        const fallback = ctaId && (await this.orm.call("mautomate.cta", "mautomate_snippet_fallback", [[ctaId]]));
        const link = this.$target[0].querySelector(".o_mautomate_cta_link");
        if (!fallback || !link) {
            return;
        }
        link.textContent = fallback.label;
        link.setAttribute("href", fallback.url);
        link.classList.remove("btn-primary", "btn-secondary", "btn-outline-primary", "btn-link");
        link.classList.add(`btn-${fallback.style}`);
    },

    async _renderCustomXML(uiFragment) {
        this.ctas = await this.orm.call("mautomate.cta", "name_search", [""]);
        const selectEl = uiFragment.querySelector(".o_mautomate_cta_select");
        for (const [id, name] of this.ctas) {
            const button = document.createElement("we-button");
            button.dataset.selectDataAttribute = id;
            button.textContent = name;
            selectEl.appendChild(button);
        }
    },
});
