import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("mautomate_anonymous_visitor_contact_us", {
    url: "/",
    steps: () => [
        {
            content: "On the home page, open Contact us from the menu",
            trigger: "body:not(:has(form#contactus_form)) header a.nav-link[href='/contactus']",
            run: "click",
        },
        {
            content: "Back to the home page",
            trigger: "body:has(form#contactus_form) header a.nav-link[href='/']",
            run: "click",
        },
        {
            content: "Use the Contact Us button",
            trigger: "body:not(:has(form#contactus_form)) header a.btn[href='/contactus']",
            run: "click",
        },
        {
            content: "Name",
            trigger: "form#contactus_form input[name=contact_name]",
            run: "edit Vera Visitor",
        },
        {
            content: "E-mail",
            trigger: "form#contactus_form input[name=email_from]",
            run: "edit vera.visitor@example.com",
        },
        {
            content: "Company",
            trigger: "form#contactus_form input[name=partner_name]",
            run: "edit Visitor Ventures",
        },
        {
            content: "Subject",
            trigger: "form#contactus_form input[name=name]",
            run: "edit Pricing for 40 seats",
        },
        {
            content: "Question",
            trigger: "form#contactus_form textarea[name=description]",
            run: "edit Can you send us a quote?",
        },
        {
            content: "Send",
            trigger: "form#contactus_form .s_website_form_send",
            run: "click",
        },
        {
            content: "The thank-you page is shown",
            trigger: "#wrap:has(h1:contains('Thank You!'))",
        },
    ],
});

registry.category("web_tour.tours").add("mautomate_lead_timeline", {
    steps: () => [
        {
            content: "Open the lead's timeline",
            trigger: ".o_form_view button[name=action_mautomate_timeline]",
            run: "click",
        },
        {
            content: "The form submit is on the timeline",
            trigger: ".o_mautomate_timeline .o_data_row:has(.o_mautomate_event_type .fa-pencil-square-o):contains(Form Submit)",
        },
        {
            content: "The page views before it are on the timeline",
            trigger: ".o_mautomate_timeline .o_data_row:has(.fa-eye):contains(/contactus)",
        },
        {
            content: "The home page view is on the timeline",
            trigger: ".o_mautomate_timeline .o_data_row:has(.fa-eye):contains(Page View)",
        },
        {
            content: "Filter on page views",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Choose the Page Views filter",
            trigger: ".o_menu_item:contains(Page Views)",
            run: "click",
        },
        {
            content: "Only page views remain",
            trigger: ".o_mautomate_timeline:not(:has(.fa-pencil-square-o)) .o_data_row:has(.fa-eye)",
        },
    ],
});

registry.category("web_tour.tours").add("mautomate_stock_contact_us", {
    url: "/",
    steps: () => [
        {
            content: "On the home page of a fresh website, open Contact us",
            trigger: "body:not(:has(form#contactus_form)) header a.nav-link[href='/contactus']",
            run: "click",
        },
        {
            content: "The stock form sends an e-mail",
            trigger: "form#contactus_form[data-model_name='mail.mail'] input[name=name]",
            run: "edit Maja Mailer",
        },
        {
            content: "Phone",
            trigger: "form#contactus_form input[name=phone]",
            run: "edit +46 70 123 45 67",
        },
        {
            content: "E-mail",
            trigger: "form#contactus_form input[name=email_from]",
            run: "edit maja@mailer.example.com",
        },
        {
            content: "Company",
            trigger: "form#contactus_form input[name=company]",
            run: "edit Mailer AB",
        },
        {
            content: "Subject",
            trigger: "form#contactus_form input[name=subject]",
            run: "edit Offert",
        },
        {
            content: "Question",
            trigger: "form#contactus_form textarea[name=description]",
            run: "edit Kan ni skicka en offert?",
        },
        {
            content: "Send",
            trigger: "form#contactus_form .s_website_form_send",
            run: "click",
        },
        {
            content: "The thank-you page is shown",
            trigger: "#wrap:has(h1:contains('Thank You!'))",
        },
    ],
});
