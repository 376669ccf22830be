import { registry } from "@web/core/registry";

// Started on a contact's or a lead's form whose person has a website visit, a form submit and an e-mail opened.
registry.category("web_tour.tours").add("mautomate_timeline_tab", {
    steps: () => [
        {
            content: "Open the Timeline tab",
            trigger: ".o_form_view .o_notebook_headers a.nav-link[name=mautomate_timeline]",
            run: "click",
        },
        {
            content: "The activity chart is drawn",
            trigger: ".o_mautomate_timeline_chart canvas[height]",
        },
        {
            content: "Days are headed",
            trigger: ".o_mautomate_timeline_day_header",
        },
        {
            content: "The visit is headed with its site and page count",
            trigger: ".o_mautomate_timeline_visit_header:contains(Visit on www.example.com):contains(3 pages)",
        },
        {
            content: "Pages show their title, with the URL as link, and the time spent on them",
            trigger: ".o_mautomate_timeline_visit .o_mautomate_timeline_event[data-type=page_view]:has(a.o_mautomate_timeline_title[href='https://www.example.com/pricing']:contains(Pricing)):has(.o_mautomate_timeline_duration:contains(4 min))",
        },
        {
            content: "The form submit is inside the visit",
            trigger: ".o_mautomate_timeline_visit .o_mautomate_timeline_event[data-type=form_submit]",
        },
        {
            content: "The e-mail opened stands alone",
            trigger: ".o_mautomate_timeline_single .o_mautomate_timeline_event[data-type=email_open]:contains(Our autumn offers)",
        },
        {
            content: "Show only page views",
            trigger: ".o_mautomate_timeline_type[data-type=page_view]",
            run: "click",
        },
        {
            content: "Only page views remain",
            trigger: ".o_mautomate_timeline_tab:not(:has(.o_mautomate_timeline_event[data-type=form_submit])):not(:has(.o_mautomate_timeline_event[data-type=email_open])) .o_mautomate_timeline_event[data-type=page_view]",
        },
        {
            content: "Open the full list",
            trigger: ".o_mautomate_timeline_open_list",
            run: "click",
        },
        {
            content: "The full list shows the person's events",
            trigger: ".o_mautomate_timeline .o_data_row:contains(Our autumn offers)",
        },
    ],
});
