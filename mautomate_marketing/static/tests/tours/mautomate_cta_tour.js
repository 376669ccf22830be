import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("mautomate_smart_cta_ebook", {
    url: "/smart-cta-test",
    steps: () => [
        {
            content: "A new visitor is offered the e-book",
            trigger: ".s_mautomate_cta.o_mautomate_cta_ready a.o_mautomate_cta_link.btn-primary:contains(Free e-book)",
            run: "click",
        },
        {
            content: "The link leads to the e-book page",
            trigger: "body:has(form#contactus_form)",
        },
    ],
});

registry.category("web_tour.tours").add("mautomate_smart_cta_webinar", {
    url: "/smart-cta-test",
    steps: () => [
        {
            content: "After the download, the same browser is offered the webinar",
            trigger: ".s_mautomate_cta.o_mautomate_cta_ready a.o_mautomate_cta_link.btn-secondary:contains(Join the webinar)",
        },
    ],
});
