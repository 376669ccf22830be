/** @odoo-module **/

import { rpc } from "@web/core/network/rpc";
import publicWidget from "@web/legacy/js/public/public_widget";

const STYLES = ["btn-primary", "btn-secondary", "btn-outline-primary", "btn-link"];
const SAFE_URL = /^(\/|#|https?:\/\/|mailto:|tel:)/i;

/**
 * Smart Call-to-Action block: shows the line of its CTA that fits this visitor (asked from the server,
 * which knows the visitor by its cookie) and reports the click. Until then, or without an answer, the
 * block keeps the fallback saved in the page.
 */
publicWidget.registry.MautomateCta = publicWidget.Widget.extend({
    selector: ".s_mautomate_cta[data-cta-id]",
    disabledInEditableMode: true,
    events: {
        "click .o_mautomate_cta_link": "_onClick",
    },

    async start() {
        await this._super(...arguments);
        const ctaId = parseInt(this.el.dataset.ctaId);
        const link = this.el.querySelector(".o_mautomate_cta_link");
        if (!ctaId || !link) {
            return;
        }
        let offer;
        try {
            offer = await rpc(`/mautomate/cta/${ctaId}`, { page_url: window.location.href });
        } catch {
            return;
        }
        if (!offer || !offer.label || !SAFE_URL.test(offer.url || "")) {
            return;
        }
        // textContent: the label is text, never markup.
        link.textContent = offer.label;
        link.setAttribute("href", offer.url);
        link.classList.remove(...STYLES);
        link.classList.add(`btn-${offer.style}`);
        this.token = offer.token;
        this.el.classList.add("o_mautomate_cta_ready");
    },

    _onClick() {
        if (!this.token) {
            return;
        }
        // A beacon survives the navigation the click starts.
        const body = JSON.stringify({ token: this.token, url: window.location.href });
        if (!(navigator.sendBeacon && navigator.sendBeacon("/mautomate/cta/click", body))) {
            fetch("/mautomate/cta/click", { method: "POST", body, keepalive: true, headers: { "Content-Type": "text/plain" } });
        }
    },
});

export default publicWidget.registry.MautomateCta;
