import { registry } from "@web/core/registry";

// The pointer leaves the page by its top edge, towards the browser's tabs.
function exitIntent() {
    document.dispatchEvent(new MouseEvent("mouseout", { bubbles: true, clientX: 300, clientY: -1, relatedTarget: null }));
}

registry.category("web_tour.tours").add("mautomate_form_visitor", {
    url: "/",
    steps: () => [
        // First visit: two pages, the pop-up on exit intent, once.
        {
            content: "The home page's pop-up waits for the visitor to leave",
            trigger: "#wrapwrap[data-mautomate-popup=armed]",
            run: exitIntent,
        },
        {
            content: "The pop-up shows the e-book form",
            trigger: ".o_mautomate_popup form.o_mautomate_form input[name=email]",
        },
        {
            content: "Close the pop-up",
            trigger: ".o_mautomate_popup .o_mautomate_popup_close",
            run: "click",
        },
        {
            content: "Go to the contact page",
            trigger: "body:not(:has(.o_mautomate_popup)) header a.nav-link[href='/contactus']",
            run: "click",
        },
        {
            content: "On the second page the pop-up is not offered again within its period",
            trigger: "body:has(form#contactus_form) #wrapwrap[data-mautomate-popup=none]",
            run: exitIntent,
        },
        {
            content: "Leaving shows nothing",
            trigger: "body:has(form#contactus_form):not(:has(.o_mautomate_popup))",
            run: "goToUrl /mautomate/form/ebook",
        },
        // The e-book form's page: three questions (the e-mail and two).
        {
            content: "Three questions: e-mail, name, company",
            trigger: "form.o_mautomate_form:has([data-name=email]):has([data-name=name]):has([data-name=company_name]):not(:has([data-name=function]))",
        },
        {
            content: "E-mail",
            trigger: "form.o_mautomate_form input[name=email]",
            run: "edit tour.visitor@example.com",
        },
        {
            content: "Name",
            trigger: "form.o_mautomate_form input[name=name]",
            run: "edit Tove Tour",
        },
        {
            content: "Company",
            trigger: "form.o_mautomate_form input[name=company_name]",
            run: "edit Tour AB",
        },
        {
            content: "Consent",
            trigger: "form.o_mautomate_form input[name=consent]",
            run: "click",
        },
        {
            content: "Send",
            trigger: "form.o_mautomate_form button[type=submit]",
            run: "click",
        },
        {
            content: "Thank you, and the e-book",
            trigger: ".o_mautomate_form_thanks a.o_mautomate_form_file",
            run: "goToUrl /mautomate-tour-ebook",
        },
        // A later visit: a page with the Marketing Form block asks the next questions.
        {
            content: "The block asks the e-mail and the next two questions, and shows nothing known",
            trigger: ".s_mautomate_form form.o_mautomate_form:has([data-name=email]):has([data-name=function]):has([data-name=city]):not(:has([data-name=name]))",
            run() {
                if (document.querySelector(".s_mautomate_form input[name=email]").value) {
                    throw new Error("A browser that is not logged in is shown a known value");
                }
            },
        },
        {
            content: "E-mail again",
            trigger: ".s_mautomate_form input[name=email]",
            run: "edit tour.visitor@example.com",
        },
        {
            content: "Job position",
            trigger: ".s_mautomate_form input[name=function]",
            run: "edit Buyer",
        },
        {
            content: "City",
            trigger: ".s_mautomate_form input[name=city]",
            run: "edit Malmö",
        },
        {
            content: "Consent",
            trigger: ".s_mautomate_form input[name=consent]",
            run: "click",
        },
        {
            content: "Send from the block",
            trigger: ".s_mautomate_form button[type=submit]",
            run: "click",
        },
        {
            content: "The thank-you replaces the form in place",
            trigger: ".s_mautomate_form .o_mautomate_form_thanks a.o_mautomate_form_file",
        },
    ],
});
