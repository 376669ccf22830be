import { Component } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

export const EVENT_TYPE_ICONS = {
    page_view: "fa-eye",
    form_view: "fa-list-alt",
    form_submit: "fa-pencil-square-o",
    email_sent: "fa-paper-plane",
    email_open: "fa-envelope-open-o",
    email_click: "fa-hand-pointer-o",
    email_bounce: "fa-exclamation-triangle",
    email_reply: "fa-reply",
    link_click: "fa-link",
    download: "fa-download",
    cta_click: "fa-bullseye",
    cta_view: "fa-bullhorn",
    popup_view: "fa-window-maximize",
    custom: "fa-bolt",
    stage_change: "fa-flag",
    activity_done: "fa-check-square-o",
};

/** The event type as an icon followed by its label, for the contact timeline. */
export class EventTypeIconField extends Component {
    static template = "mautomate_marketing.EventTypeIconField";
    static props = { ...standardFieldProps };

    get icon() {
        return EVENT_TYPE_ICONS[this.props.record.data[this.props.name]] || "fa-circle-o";
    }

    get label() {
        const value = this.props.record.data[this.props.name];
        const option = this.props.record.fields[this.props.name].selection.find(([key]) => key === value);
        return option ? option[1] : "";
    }
}

registry.category("fields").add("mautomate_event_type_icon", {
    component: EventTypeIconField,
    displayName: "Event Type Icon",
    supportedTypes: ["selection"],
});
