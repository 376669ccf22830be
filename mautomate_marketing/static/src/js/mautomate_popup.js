/** @odoo-module **/
import { _t } from "@web/core/l10n/translation";
import publicWidget from "@web/legacy/js/public/public_widget";
import { isFormDone, loadEmbeddedForm } from "@mautomate_marketing/js/mautomate_form_embed";

const DAY_MS = 24 * 3600 * 1000;

function seenKey(popup) {
    return `mautomate_popup_seen_${popup.id}`;
}

/**
 * Marketing pop-ups: once the page has loaded, asks /mautomate/popup which pop-up applies to it, then shows
 * its form on exit intent, after a delay or after scrolling. The browser remembers when it showed each pop-up
 * (at most once per period) and which forms it sent (never again; the server also leaves out the forms this
 * browser or its contact sent). Whatever fails, the page is left as it is.
 */
publicWidget.registry.MautomatePopup = publicWidget.Widget.extend({
    selector: "#wrapwrap",
    disabledInEditableMode: true,

    start() {
        this._disarm = () => {};
        // Not in the website editor's preview frame, and never before the page is shown.
        if (window.self === window.top) {
            this._timeout = setTimeout(() => this._ask().catch(() => {}), 0);
        }
        return this._super(...arguments);
    },

    destroy() {
        clearTimeout(this._timeout);
        this._disarm();
        this._overlay?.remove();
        this._super(...arguments);
    },

    async _ask() {
        const response = await fetch(`/mautomate/popup?path=${encodeURIComponent(window.location.pathname)}`, {
            headers: { "X-Disable-Tracking": "1" },
            credentials: "same-origin",
        });
        if (!response.ok) {
            return;
        }
        const { popups } = await response.json();
        const popup = (popups || []).find((popup) => !isFormDone(popup.slug) && !this._seenRecently(popup));
        // What the page decided, for its scripts and tests: "armed" (a pop-up waits for its moment) or "none".
        this.el.dataset.mautomatePopup = popup ? "armed" : "none";
        if (popup) {
            this._arm(popup);
        }
    },

    _seenRecently(popup) {
        try {
            const seenAt = Number(window.localStorage.getItem(seenKey(popup)));
            return Boolean(seenAt) && Date.now() - seenAt < popup.period_days * DAY_MS;
        } catch {
            return true; // no storage: the browser could not remember it, so it is not shown at all
        }
    },

    _arm(popup) {
        const show = () => {
            this._disarm();
            this._show(popup).catch(() => this._overlay?.remove());
        };
        if (popup.trigger === "delay") {
            const timer = setTimeout(show, popup.delay * 1000);
            this._disarm = () => clearTimeout(timer);
        } else if (popup.trigger === "scroll") {
            const onScroll = () => {
                const page = document.documentElement;
                const scrollable = page.scrollHeight - window.innerHeight;
                if (scrollable <= 0 || (window.scrollY / scrollable) * 100 >= popup.scroll) {
                    show();
                }
            };
            window.addEventListener("scroll", onScroll, { passive: true });
            this._disarm = () => window.removeEventListener("scroll", onScroll);
        } else {
            // Exit intent: the pointer leaves the document by its top edge (towards the tabs or the address bar).
            const onMouseOut = (ev) => {
                if (!ev.relatedTarget && ev.clientY <= 0) {
                    show();
                }
            };
            document.addEventListener("mouseout", onMouseOut);
            this._disarm = () => document.removeEventListener("mouseout", onMouseOut);
        }
    },

    async _show(popup) {
        const overlay = document.createElement("div");
        overlay.className = "o_mautomate_popup";
        overlay.dataset.popupId = popup.id;
        const dialog = document.createElement("div");
        dialog.className = "o_mautomate_popup_dialog bg-white shadow rounded p-4";
        dialog.setAttribute("role", "dialog");
        dialog.setAttribute("aria-modal", "true");
        const close = document.createElement("button");
        close.type = "button";
        close.className = "btn-close o_mautomate_popup_close";
        close.setAttribute("aria-label", _t("Close"));
        const body = document.createElement("div");
        dialog.append(close, body);
        overlay.append(dialog);
        if (!(await loadEmbeddedForm(body, popup.slug, { popup: popup.token }))) {
            return;
        }
        this._overlay = overlay;
        document.body.append(overlay);
        this.el.dataset.mautomatePopup = "shown";
        if (popup.token) {
            // The view is an event of the visitor (and of the pop-up's A/B test).
            const beacon = JSON.stringify({ token: popup.token, url: window.location.href });
            if (!(navigator.sendBeacon && navigator.sendBeacon("/mautomate/popup/shown", beacon))) {
                fetch("/mautomate/popup/shown", { method: "POST", body: beacon, keepalive: true }).catch(() => {});
            }
        }
        try {
            window.localStorage.setItem(seenKey(popup), String(Date.now()));
        } catch {
            // Without storage the pop-up is not shown again on this page only.
        }
        const onKey = (ev) => ev.key === "Escape" && remove();
        const remove = () => {
            overlay.remove();
            document.removeEventListener("keydown", onKey);
        };
        close.addEventListener("click", remove);
        overlay.addEventListener("click", (ev) => ev.target === overlay && remove());
        document.addEventListener("keydown", onKey);
        body.querySelector("input:not([type=hidden]):not([tabindex='-1'])")?.focus();
    },
});
