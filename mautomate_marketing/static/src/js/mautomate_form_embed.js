/** @odoo-module **/
/**
 * Embedded marketing forms (the website block and the pop-ups): the server renders the form for this
 * visitor (/mautomate/form/<slug>/embed); a submit posts to the same address and the answer (the form
 * with its errors next to the fields, or the thank-you) replaces it in place. Without JavaScript the
 * block links to the form's own page, where the form posts as plain HTML.
 */

// Fetching a form is not a page view of the visitor.
const HEADERS = { "X-Disable-Tracking": "1" };

export function formDoneKey(slug) {
    return `mautomate_form_done_${slug}`;
}

export function isFormDone(slug) {
    try {
        return window.localStorage.getItem(formDoneKey(slug)) === "1";
    } catch {
        return false;
    }
}

/**
 * Load the form `slug` into `slot`. Resolves to true once shown, false when it could not be (the slot keeps
 * what it had). `onSubmitted` is called after a successful submit; `popup` is the token of the pop-up showing
 * the form, which its submit then names.
 */
export async function loadEmbeddedForm(slot, slug, { onSubmitted, popup } = {}) {
    const query = popup ? `?${new URLSearchParams({ popup })}` : "";
    try {
        const response = await fetch(`/mautomate/form/${encodeURIComponent(slug)}/embed${query}`, {
            headers: HEADERS,
            credentials: "same-origin",
        });
        if (!response.ok) {
            return false;
        }
        showAnswer(slot, slug, await response.text(), onSubmitted);
        return true;
    } catch {
        return false;
    }
}

function showAnswer(slot, slug, html, onSubmitted) {
    // The server's QWeb rendering: every value in it is escaped.
    slot.innerHTML = html;
    const thanks = slot.querySelector(".o_mautomate_form_thanks");
    if (thanks) {
        try {
            window.localStorage.setItem(formDoneKey(slug), "1");
        } catch {
            // Private browsing without storage: the server still knows the browser sent the form.
        }
        onSubmitted?.();
        if (thanks.dataset.redirect) {
            window.location.assign(thanks.dataset.redirect);
        }
        return;
    }
    const form = slot.querySelector("form.o_mautomate_form");
    if (!form) {
        return;
    }
    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const button = form.querySelector("[type=submit]");
        if (button) {
            button.disabled = true;
        }
        try {
            const response = await fetch(form.dataset.embedUrl, {
                method: "POST",
                body: new FormData(form),
                headers: HEADERS,
                credentials: "same-origin",
            });
            if (response.status >= 500) {
                throw new Error(`HTTP ${response.status}`);
            }
            showAnswer(slot, slug, await response.text(), onSubmitted);
        } catch {
            // The plain HTML post still works: the form's own page answers.
            form.submit();
        }
    });
}
