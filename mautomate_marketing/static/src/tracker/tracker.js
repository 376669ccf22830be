/*
 * mautomate tracker: page views, marked calls to action and downloads on a site that is
 * not on Odoo, sent in batches to the Odoo database's /mautomate/track endpoint.
 *
 * Configure with the script tag's data-endpoint and data-require-consent attributes, or before loading:
 *   window.mautomateTracker = {endpoint: "https://odoo.example.com/mautomate/track", requireConsent: false};
 * Mark calls to action with data-mautomate-cta="Book a demo". After consent: mautomateTracker.consent(true).
 * The Browser ID cookie mautomate_vid (two years) is set with the first event sent: never under
 * Do-Not-Track / Global Privacy Control, and not before consent when consent is required.
 * mautomateTracker.identify(email, signature, timestamp) names the visitor, signed by the site's server.
 */
(function (window, document) {
    "use strict";

    var script = document.currentScript;
    var config = window.mautomateTracker || (script && script.dataset.endpoint ? {
        endpoint: script.dataset.endpoint,
        requireConsent: script.dataset.requireConsent === "true",
    } : {});
    if (config.loaded) {
        return;
    }
    var COOKIE = "mautomate_vid";
    var COOKIE_DAYS = 730;
    var FLUSH_DELAY_MS = config.flushDelay || 2000;
    var MAX_BATCH = 50;
    var DOWNLOAD_EXTENSIONS = /\.(pdf|zip|rar|7z|gz|docx?|xlsx?|pptx?|odt|ods|csv|txt|mp3|mp4|mov|dmg|exe|msi|apk)(\?|#|$)/i;
    var queue = [];
    var timer = null;
    var consented = !config.requireConsent;

    function doNotTrack() {
        return navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.globalPrivacyControl === true;
    }

    function readCookie() {
        var match = document.cookie.match(/(?:^|;\s*)mautomate_vid=([0-9a-f]{32})/);
        return match ? match[1] : null;
    }

    function newBrowserId() {
        var bytes = new Uint8Array(16);
        window.crypto.getRandomValues(bytes);
        return Array.prototype.map.call(bytes, function (b) {
            return ("0" + b.toString(16)).slice(-2);
        }).join("");
    }

    function browserId() {
        var id = readCookie();
        if (!id) {
            id = newBrowserId();
            var expires = new Date(Date.now() + COOKIE_DAYS * 864e5).toUTCString();
            document.cookie = COOKIE + "=" + id + "; expires=" + expires + "; path=/; SameSite=Lax" +
                (location.protocol === "https:" ? "; Secure" : "");
        }
        return id;
    }

    function active() {
        return Boolean(config.endpoint) && consented && !doNotTrack();
    }

    /** Send the queue; the promise settles when every batch has been handed over. */
    function flush(useBeacon) {
        clearTimeout(timer);
        timer = null;
        var sent = [];
        while (queue.length && active()) {
            var body = JSON.stringify({vid: browserId(), events: queue.splice(0, MAX_BATCH)});
            if (useBeacon && navigator.sendBeacon && navigator.sendBeacon(config.endpoint, body)) {
                continue;
            }
            // text/plain keeps the cross-site request simple (no CORS preflight); credentials as sendBeacon sends them.
            sent.push(fetch(config.endpoint, {method: "POST", body: body, mode: "no-cors", credentials: "include",
                                              headers: {"Content-Type": "text/plain"}}).catch(function () {}));
        }
        return Promise.all(sent);
    }

    function track(type, name, url, value) {
        if (!active()) {
            return;
        }
        var event = {type: type, url: url || location.href, name: name || document.title, ts: Date.now()};
        if (typeof value === "number" && isFinite(value)) {
            event.value = value;
        }
        queue.push(event);
        if (queue.length >= MAX_BATCH) {
            flush(false);
        } else if (!timer) {
            timer = setTimeout(function () { flush(false); }, FLUSH_DELAY_MS);
        }
    }

    function onClick(ev) {
        var target = ev.target instanceof Element ? ev.target : null;
        var cta = target && target.closest("[data-mautomate-cta]");
        if (cta) {
            track("cta_click", cta.getAttribute("data-mautomate-cta") || cta.textContent.trim().slice(0, 200),
                  location.href);
        }
        var link = target && target.closest("a[href]");
        if (link && (link.hasAttribute("download") || DOWNLOAD_EXTENSIONS.test(link.pathname))) {
            track("download", link.getAttribute("download") || link.pathname.split("/").pop() || link.href, link.href);
        }
    }

    var api = {
        loaded: true,
        endpoint: config.endpoint,
        requireConsent: Boolean(config.requireConsent),
        track: function (type, name, value) {
            track(type, name, location.href, value);
        },
        consent: function (granted) {
            var before = consented;
            consented = granted !== false;
            if (!consented) {
                queue.length = 0;
                document.cookie = COOKIE + "=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
            } else if (!before) {
                // The page was not counted while consent was pending.
                track("page_view");
            }
        },
        flush: function () {
            return flush(false);
        },
        /**
         * Attach this browser's history to the contact of `email`; `signature` is the hex HMAC-SHA256 of
         * "email|browser id|timestamp" (the lower-case e-mail, this browser's mautomate_vid cookie, `timestamp`
         * in unix seconds) with the identify secret, computed by the site's server at most 10 minutes before.
         * Resolves to true when the database accepted it.
         */
        identify: function (email, signature, timestamp) {
            if (!active()) {
                return Promise.resolve(false);
            }
            var body = JSON.stringify({vid: browserId(), email: email, signature: signature,
                                       timestamp: Number(timestamp)});
            return flush(false).then(function () {
                return fetch(config.endpoint.replace(/\/track$/, "/identify"), {
                    method: "POST", body: body, credentials: "include", headers: {"Content-Type": "text/plain"},
                });
            }).then(function (response) {
                return response.ok;
            }).catch(function () {
                return false;
            });
        },
    };
    window.mautomateTracker = api;

    document.addEventListener("click", onClick, true);
    document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "hidden") {
            flush(true);
        }
    });
    window.addEventListener("pagehide", function () { flush(true); });
    track("page_view");
})(window, document);
