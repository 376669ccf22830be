import { Component, onWillStart, onWillUpdateProps, useEffect, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { cookie } from "@web/core/browser/cookie";
import { getColor } from "@web/core/colors/colors";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { EVENT_TYPE_ICONS } from "../event_type_icon/event_type_icon";

const { DateTime } = luxon;
// One color per event type (an index in Odoo's 12-color palette), e-mails in related shades.
const TYPE_COLORS = {
    link_click: 0,
    page_view: 1,
    email_reply: 2,
    form_submit: 3,
    form_view: 3,
    email_click: 4,
    email_bounce: 5,
    cta_click: 6,
    cta_view: 6,
    popup_view: 6,
    download: 7,
    email_sent: 8,
    email_open: 9,
    custom: 11,
    stage_change: 10,
    activity_done: 2,
};

/**
 * The Timeline tab of a contact or a lead: activity per day (or week, month) by event type,
 * then the latest events grouped by day and visit, filterable by type. The record's
 * mautomate_get_timeline_data() computes it all in one call.
 */
export class MautomateTimeline extends Component {
    static template = "mautomate_marketing.Timeline";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.canvasRef = useRef("canvas");
        this.state = useState({ data: null, selected: [], loading: false });
        this.chart = null;
        this.request = 0;
        onWillStart(() => Promise.all([loadBundle("web.chartjs_lib"), this.load(this.props.record.resId)]));
        onWillUpdateProps((nextProps) => {
            if (nextProps.record.resId !== this.props.record.resId) {
                this.state.selected = [];
                return this.load(nextProps.record.resId);
            }
        });
        useEffect(
            () => {
                this.renderChart();
                return () => this.chart?.destroy();
            },
            () => [this.state.data]
        );
    }

    async load(resId) {
        if (!resId) {
            this.state.data = null;
            return;
        }
        // A later click wins over an answer still on its way.
        const request = ++this.request;
        this.state.loading = true;
        const data = await this.orm.call(this.props.record.resModel, "mautomate_get_timeline_data", [[resId]], {
            event_types: this.state.selected,
        });
        if (request === this.request) {
            this.state.data = data;
            this.state.loading = false;
        }
    }

    get typeLabels() {
        return Object.fromEntries((this.state.data?.types || []).map((type) => [type.type, type.label]));
    }

    icon(type) {
        return EVENT_TYPE_ICONS[type] || "fa-circle-o";
    }

    color(type) {
        return getColor(TYPE_COLORS[type] ?? 10, cookie.get("color_scheme"), 12);
    }

    isSelected(type) {
        return this.state.selected.includes(type);
    }

    toggleType(type) {
        this.state.selected = this.isSelected(type)
            ? this.state.selected.filter((selected) => selected !== type)
            : [...this.state.selected, type];
        return this.load(this.props.record.resId);
    }

    showAllTypes() {
        this.state.selected = [];
        return this.load(this.props.record.resId);
    }

    async openFullList() {
        if (await this.props.record.save()) {
            const action = await this.orm.call(this.props.record.resModel, "action_mautomate_timeline", [
                [this.props.record.resId],
            ]);
            await this.action.doAction(action);
        }
    }

    // Dates come from the server already in the user's time zone.
    parse(value) {
        return DateTime.fromSQL(value);
    }

    formatDay(date) {
        const day = this.parse(date);
        const today = DateTime.now().startOf("day");
        if (+day === +today) {
            return _t("Today");
        }
        if (+day === +today.minus({ days: 1 })) {
            return _t("Yesterday");
        }
        return day.toLocaleString(DateTime.DATE_HUGE);
    }

    formatTime(value) {
        return this.parse(value).toLocaleString(DateTime.TIME_SIMPLE);
    }

    formatDuration(seconds) {
        if (seconds < 60) {
            return _t("%s s", Math.round(seconds));
        }
        const minutes = Math.round(seconds / 60);
        if (minutes < 60) {
            return _t("%s min", minutes);
        }
        return _t("%(hours)s h %(minutes)s min", { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
    }

    visitSummary(entry) {
        const parts = [];
        if (entry.page_count) {
            parts.push(entry.page_count === 1 ? _t("1 page") : _t("%s pages", entry.page_count));
        }
        if (entry.duration >= 1) {
            parts.push(this.formatDuration(entry.duration));
        }
        if (entry.campaign) {
            parts.push(_t("Campaign: %s", entry.campaign));
        }
        return parts.join(" · ");
    }

    bucketLabel(bucket, long = false) {
        const date = this.parse(bucket);
        const interval = this.state.data.chart.interval;
        if (interval === "month") {
            return date.toFormat(long ? "MMMM yyyy" : "MMM yyyy");
        }
        if (interval === "week") {
            return long
                ? _t("Week of %s", date.toLocaleString(DateTime.DATE_MED))
                : date.toFormat("d MMM");
        }
        return long ? date.toLocaleString(DateTime.DATE_MED_WITH_WEEKDAY) : date.toFormat("d MMM");
    }

    renderChart() {
        this.chart?.destroy();
        this.chart = null;
        const chart = this.state.data?.chart;
        if (!this.canvasRef.el || !chart?.buckets.length) {
            return;
        }
        this.chart = new Chart(this.canvasRef.el, {
            type: "bar",
            data: {
                labels: chart.buckets.map((bucket) => this.bucketLabel(bucket)),
                datasets: chart.datasets.map((dataset) => ({
                    label: dataset.label,
                    data: dataset.data,
                    backgroundColor: this.color(dataset.type),
                    stack: "events",
                })),
            },
            options: {
                maintainAspectRatio: false,
                animation: false,
                scales: {
                    x: { stacked: true, grid: { display: false } },
                    y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
                },
                plugins: {
                    legend: { position: "bottom", labels: { boxWidth: 12 } },
                    tooltip: {
                        mode: "index",
                        intersect: false,
                        filter: (item) => item.raw > 0,
                        callbacks: { title: (items) => this.bucketLabel(chart.buckets[items[0].dataIndex], true) },
                    },
                },
            },
        });
    }
}

registry.category("view_widgets").add("mautomate_timeline", { component: MautomateTimeline });
