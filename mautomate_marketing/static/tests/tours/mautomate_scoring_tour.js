import { registry } from "@web/core/registry";

// A sales rep on the pipeline: a hot lead (A1) and a cold one (D4) of theirs, with scoring history.
registry.category("web_tour.tours").add("mautomate_scoring_pipeline", {
    steps: () => [
        {
            content: "The hot lead's card shows its grade",
            trigger: ".o_kanban_record:contains(Hot prospect) .o_field_widget[name=mautomate_grade]:contains(A1)",
        },
        {
            content: "The cold lead's card shows its grade",
            trigger: ".o_kanban_record:contains(Cold prospect) .o_field_widget[name=mautomate_grade]:contains(D4)",
        },
        {
            content: "Open the search options",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Filter hot leads",
            trigger: ".o_filter_menu .o_menu_item:contains(Hot: A1, A2, B1)",
            run: "click",
        },
        {
            content: "Only the hot lead is left",
            trigger: ".o_kanban_view:not(:has(.o_kanban_record:contains(Cold prospect))) .o_kanban_record:contains(Hot prospect)",
            run: "click",
        },
        {
            content: "Read why it scores: the Score tab",
            trigger: ".o_form_view .o_notebook_headers a.nav-link[name=mautomate_scoring]",
            run: "click",
        },
        {
            content: "The strongest reasons come first, with their points",
            trigger: ".o_mautomate_why .o_mautomate_why_reasons tbody tr:first-child:contains(Booked a demo):contains(+60)",
        },
        {
            content: "The latest scoring events are listed",
            trigger: ".o_mautomate_why .o_mautomate_why_latest:contains(Pricing)",
        },
        {
            content: "Open the full ledger",
            trigger: ".o_mautomate_why button[name=action_mautomate_score_entries]",
            run: "click",
        },
        {
            content: "The ledger lists the awards",
            trigger: ".o_list_view .o_data_row:contains(Visited pricing)",
        },
    ],
});
