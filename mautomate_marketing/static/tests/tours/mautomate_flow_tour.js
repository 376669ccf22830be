import { registry } from "@web/core/registry";

// Pick `value` in the many2one (or many2many tags) field `field` of the open dialog, or of the form.
function pick(field, search, value, scope = ".modal") {
    return [
        {
            content: `Search ${search} in ${field}`,
            trigger: `${scope} .o_field_widget[name=${field}] input`,
            run: `edit ${search}`,
        },
        {
            content: `Pick ${value}`,
            trigger: `.o-autocomplete--dropdown-item a:contains(${value})`,
            run: "click",
        },
    ];
}

// Add a step to the flow in its dialog; `settings` are the steps filling the step's own fields.
function addStep(name, kind, settings) {
    return [
        {
            content: `Add the step ${name}`,
            trigger: ".o_field_widget[name=step_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Name the step",
            trigger: ".modal .o_field_widget[name=name] input",
            run: `edit ${name}`,
        },
        {
            content: `A step of kind ${kind}`,
            trigger: ".modal .o_field_widget[name=kind] select",
            run: `selectByLabel ${kind}`,
        },
        ...settings,
        {
            content: "Save the step",
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            content: "The step is in the outline",
            trigger: `body:not(:has(.modal)) .o_field_widget[name=step_ids] .o_data_row:contains(${name})`,
        },
    ];
}

function saveFlow() {
    return [
        {
            content: "Save the flow",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "The flow is saved",
            trigger: ".o_form_view .o_form_saved",
        },
    ];
}

// A marketer builds a welcome flow: a mail, then two days later "did they open it?" with a step on each branch.
registry.category("web_tour.tours").add("mautomate_flow_build", {
    steps: () => [
        {
            content: "Create a flow from the flows' kanban",
            trigger: ".o_control_panel .o-kanban-button-new",
            run: "click",
        },
        {
            content: "Name it",
            trigger: ".o_form_view .o_field_widget[name=name] input",
            run: "edit Tour welcome flow",
        },
        {
            content: "Open its triggers",
            trigger: ".o_notebook_headers a.nav-link[name=triggers]",
            run: "click",
        },
        {
            content: "Add a trigger",
            trigger: ".o_field_widget[name=trigger_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "A form submitted enrols the contact",
            trigger: ".modal .o_field_widget[name=event_type] select",
            run: "selectByLabel Form",
        },
        {
            content: "Save the trigger",
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            content: "The trigger is listed",
            trigger: "body:not(:has(.modal)) .o_field_widget[name=trigger_ids] .o_data_row:contains(Form)",
        },
        {
            content: "Open its steps",
            trigger: ".o_notebook_headers a.nav-link[name=steps]",
            run: "click",
        },
        ...addStep("Welcome mail", "Send E-mail", pick("mail_template_id", "Tour welcome", "Tour welcome")),
        ...saveFlow(),
        ...addStep("Opened the welcome mail?", "Condition", [
            ...pick("parent_ids", "Welcome", "Welcome mail"),
            {
                content: "Two days after the mail",
                trigger: ".modal .o_field_widget[name=delay] input",
                run: "edit 2",
            },
            {
                content: "The condition asks for an event",
                trigger: ".modal .o_field_widget[name=condition_type] select",
                run: "selectByLabel Event Since a Step",
            },
            {
                content: "An e-mail opened",
                trigger: ".modal .o_field_widget[name=condition_event_type] select",
                run: "selectByLabel Opened",
            },
            ...pick("condition_step_id", "Welcome", "Welcome mail"),
        ]),
        ...saveFlow(),
        ...addStep("Engaged: points", "Add Score Points", [
            ...pick("parent_ids", "Opened", "Opened the welcome mail?"),
            {
                content: "On the yes branch",
                trigger: ".modal .o_field_widget[name=branch] select",
                run: "selectByLabel Yes",
            },
            {
                content: "Ten points",
                trigger: ".modal .o_field_widget[name=score_points] input",
                run: "edit 10",
            },
        ]),
        ...addStep("Reminder", "Send E-mail", [
            ...pick("parent_ids", "Opened", "Opened the welcome mail?"),
            {
                content: "On the no branch",
                trigger: ".modal .o_field_widget[name=branch] select",
                run: "selectByLabel No",
            },
            ...pick("mail_template_id", "Tour reminder", "Tour reminder"),
        ]),
        ...saveFlow(),
        {
            content: "The outline indents the branches under the condition",
            trigger: ".o_field_widget[name=step_ids] .o_data_row:contains(Reminder) td[name=branch]:contains(No)",
        },
        {
            content: "Start the flow",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_start]",
            run: "click",
        },
        {
            content: "It runs",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains(Running)",
        },
        // Enrol a contact from the contact list, with the enrolment wizard.
        {
            content: "Open the apps menu",
            trigger: ".o_navbar_apps_menu button",
            run: "click",
        },
        {
            content: "Go to Contacts",
            trigger: ".o_app[data-menu-xmlid='contacts.menu_contacts']",
            run: "click",
        },
        {
            content: "As a list",
            trigger: ".o_control_panel .o_switch_view.o_list",
            run: "click",
        },
        {
            content: "Find the contact",
            trigger: ".o_list_view .o_searchview_input, .o_searchview_input",
            run: "edit Tina Tour && press Enter",
        },
        {
            content: "Select the contact",
            trigger: ".o_list_view .o_data_row:contains(Tina Tour) .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Open the actions",
            trigger: ".o_control_panel .o_cp_action_menus button:has(.fa-cog)",
            run: "click",
        },
        {
            content: "Enrol in a flow",
            trigger: ".o-dropdown--menu .o-dropdown-item:contains(Enrol in a Flow)",
            run: "click",
        },
        ...pick("flow_id", "Tour welcome", "Tour welcome flow"),
        {
            content: "Enrol",
            trigger: ".modal button[name=action_enroll]",
            run: "click",
        },
        {
            content: "The contact is enrolled",
            trigger: ".o_notification:contains(1 contacts enrolled in Tour welcome flow)",
        },
    ],
});

// After the engine ran: the mail went out and was opened, the condition took the yes branch.
registry.category("web_tour.tours").add("mautomate_flow_figures", {
    steps: () => [
        {
            content: "The mail was sent and opened",
            trigger: ".o_field_widget[name=step_ids] .o_data_row:contains(Welcome mail):has(td[name=done_count]:contains(1)):has(td[name=opened_count]:contains(1))",
        },
        {
            content: "The condition was passed",
            trigger: ".o_field_widget[name=step_ids] .o_data_row:contains(Opened the welcome mail?):has(td[name=done_count]:contains(1))",
        },
        {
            content: "The yes branch was taken",
            trigger: ".o_field_widget[name=step_ids] .o_data_row:contains(Engaged: points):has(td[name=done_count]:contains(1))",
        },
        {
            content: "Not the no branch",
            trigger: ".o_field_widget[name=step_ids] .o_data_row:contains(Reminder):has(td[name=done_count]:contains(0)):has(td[name=waiting_count]:contains(0))",
        },
        {
            content: "The chatter says who started the flow",
            trigger: ".o-mail-Chatter .o-mail-Message:contains(Mia Marketer):contains(Running)",
        },
        {
            content: "and who changed its steps",
            trigger: ".o-mail-Chatter .o-mail-Message:contains(Mia Marketer):contains(Opened the welcome mail?)",
        },
        {
            content: "Open the participants",
            trigger: ".o-form-buttonbox button[name=action_open_participants]",
            run: "click",
        },
        {
            content: "Open the contact's participation",
            trigger: ".o_list_view .o_data_row:contains(Tina Tour) td[name=partner_id]",
            run: "click",
        },
        {
            content: "The contact went through the mail, the condition and the yes step",
            trigger: ".o_form_view .o_field_widget[name=trace_ids] .o_data_row:contains(Engaged: points):contains(Done)",
        },
        {
            content: "The condition's outcome is yes",
            trigger: ".o_form_view .o_field_widget[name=trace_ids] .o_data_row:contains(Opened the welcome mail?):contains(Yes)",
        },
        {
            content: "Back to the flow",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains(Tour welcome flow)",
            run: "click",
        },
        {
            content: "Open the traces",
            trigger: ".o-form-buttonbox button[name=action_open_traces]",
            run: "click",
        },
        {
            content: "Traces by step",
            trigger: ".o_list_view .o_group_name:contains(Welcome mail)",
        },
        {
            content: "As a pivot table",
            trigger: ".o_control_panel .o_switch_view.o_pivot",
            run: "click",
        },
        {
            content: "The pivot counts traces by step",
            trigger: ".o_pivot .o_pivot_header_cell_closed:contains(Engaged: points), .o_pivot th:contains(Engaged: points)",
        },
    ],
});
