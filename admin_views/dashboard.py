"""The dashboard (home of supervisors, admins and viewers), the per-agent page and the CSV export."""

from dataclasses import dataclass

from flask import Response, abort, request, stream_with_context, url_for
from flask_admin import expose
from flask_login import current_user

from admin_views.base import SecuredView
from ticketer import durations, reports
from ticketer.extensions import db
from ticketer.models import User
from ticketer.roles import ASSIGNABLE_ROLES, Capability
from ticketer.ticket_lists import TicketFilter

duration = durations.span  # the templates' name for it


# --- SVG chart geometry (the templates draw it; no script needed) -----------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


def _nice_max(value: float) -> int:
    """The top of a y axis with 4 whole-number steps: 4 x (1, 2, 3 or 5 x 10^n), at or above `value`."""
    scale = 1
    while True:
        for m in (1, 2, 3, 5):
            if 4 * m * scale >= value:
                return 4 * m * scale
        scale *= 10


@dataclass
class DayChart:
    width: int
    height: int
    bars: list[Rect]
    x_labels: list[Label]
    y_labels: list[Label]
    gridlines: list[float]
    left: int
    right: int


def day_chart(series: list, *, fields=("opened", "closed"), width: int = 900) -> DayChart:
    """Side-by-side bars per day for each of `fields`."""
    height, left, right, top, bottom = 240, 44, width - 8, 10, 200
    peak = _nice_max(max((getattr(d, f) for d in series for f in fields), default=0))
    slot = (right - left) / max(1, len(series))
    bar = max(0.6, slot * 0.8 / len(fields))
    bars, x_labels = [], []
    every = max(1, len(series) // 10)
    for i, d in enumerate(series):
        x0 = left + i * slot + slot * 0.1
        for j, name in enumerate(fields):
            value = getattr(d, name)
            h = (bottom - top) * value / peak
            what = name.replace("_", " ")
            bars.append(Rect(x0 + j * bar, bottom - h, bar, h, name, f"{d.day:%a %b %d}: {value:,} {what}"))
        if i % every == 0:
            x_labels.append(Label(left + i * slot + slot / 2, bottom + 16, f"{d.day:%b %d}"))
    y_labels = [Label(left - 6, bottom - (bottom - top) * k / 4 + 4, f"{peak * k // 4:,}") for k in range(5)]
    gridlines = [bottom - (bottom - top) * k / 4 for k in range(5)]
    return DayChart(width, height, bars, x_labels, y_labels, gridlines, left, right)


@dataclass
class BarRow:
    label: str
    href: str | None
    y: float
    bars: list[Rect]
    values: list[Label]


@dataclass
class BarChart:
    width: int
    height: int
    rows: list[BarRow]
    label_width: int


def bar_chart(items: list[tuple[str, str | None, list[tuple]]], *, width: int = 440, value_space: int = 70) -> BarChart:
    """Horizontal bars: items are (label, link, [(value, css class, shown text[, hover text]), ...])."""
    label_width, row_gap = 150, 6
    per_bar = 14
    peak = max((v[0] for _, _, values in items for v in values if v[0]), default=0) or 1
    span = width - label_width - value_space
    rows, y = [], 4.0
    for label, href, values in items:
        bars, texts = [], []
        for k, (value, css, shown, *more) in enumerate(values):
            title = more[0] if more else shown
            by = y + k * per_bar
            w = span * (value or 0) / peak
            bars.append(Rect(label_width, by, max(w, 0.5 if value else 0), per_bar - 3, css, f"{label}: {title}"))
            texts.append(Label(label_width + w + 4, by + per_bar - 5, shown))
        rows.append(BarRow(label, href, y, bars, texts))
        y += per_bar * len(values) + row_gap
    return BarChart(width, int(y) + 4, rows, label_width)


def _agent_url(user_id: int | None) -> str | None:
    return url_for("dashboard.agent", user_id=user_id) if user_id else None


def _period_args(period: reports.Period) -> dict[str, str]:
    return {"start": period.first.isoformat(), "end": period.last.isoformat()}


class DashboardView(SecuredView):
    capability = Capability.DASHBOARD

    @expose("/")
    def index(self):
        period, errors = reports.parse_period(request.args)
        series = reports.daily_counts(period)
        breaches = reports.sla_breaches_per_day(period)
        by_topic = reports.open_by_topic()
        by_assignee = reports.open_by_assignee()
        return self.render(
            "admin/dashboard/index.html",
            period=period,
            errors=errors,
            choices=reports.PERIOD_CHOICES,
            days_arg=request.args.get("days", ""),
            totals={
                "open": sum(int(b.value) for b in by_topic),
                "opened": sum(d.opened for d in series),
                "closed": sum(d.closed for d in series),
                "breaches": sum(d.first_reply + d.resolution for d in breaches),
            },
            day_chart=day_chart(series),
            breach_chart=day_chart(breaches, fields=("first_reply", "resolution")),
            breach_totals=(sum(d.first_reply for d in breaches), sum(d.resolution for d in breaches)),
            topic_chart=bar_chart([(b.label, None, [(b.value, "open", f"{int(b.value):,}")]) for b in by_topic]),
            assignee_chart=bar_chart(
                [(b.label, _agent_url(b.key), [(b.value, "open", f"{int(b.value):,}")]) for b in by_assignee]
            ),
            medians_url=url_for(".medians", **_period_args(period)),
            export_agents=[u for u in reports.agents() if u.active],
            topics=reports.topics(),
        ), (400 if errors else 200)

    @expose("/medians")
    def medians(self):
        """The median-times panel: exact medians read every ticket of the period, so the dashboard
        loads this part after its first paint (static/dashboard.js); it is a page of its own too."""
        period, errors = reports.parse_period(request.args)
        if errors:
            abort(400, " ".join(errors.values()))
        medians = reports.median_times(period)
        agents = reports.agents()
        topics = reports.topics()
        names = {u.id: u.display_name for u in agents}
        agent_rows = [
            (names.get(uid, "Unassigned" if uid is None else f"#{uid}"), _agent_url(uid), m)
            for uid, m in sorted(medians.by_agent.items(), key=lambda kv: names.get(kv[0], "~").lower())
        ]
        topic_names = {t.id: t.name for t in topics}
        topic_rows = [
            (topic_names.get(tid, f"#{tid}"), None, m)
            for tid, m in sorted(medians.by_topic.items(), key=lambda kv: topic_names.get(kv[0], "~").lower())
        ]
        html = self.render(
            "admin/dashboard/_medians.html",
            period=period,
            medians=medians,
            agent_median_chart=bar_chart(_median_items(agent_rows), value_space=95),
            topic_median_chart=bar_chart(_median_items(topic_rows), value_space=95),
            agents=[u for u in agents if u.active],
            open_load={b.key: int(b.value) for b in reports.open_by_assignee()},
            duration=duration,
        )
        return Response(html, mimetype="text/html", headers={"Cache-Control": "private, max-age=60"})

    @expose("/agents/<int:user_id>")
    def agent(self, user_id: int):
        agent = db.session.get(User, user_id)
        if agent is None or agent.role not in {r.value for r in ASSIGNABLE_ROLES}:
            abort(404)
        period, errors = reports.parse_period(request.args)
        summary = reports.agent_summary(user_id, period)
        return self.render(
            "admin/dashboard/agent.html",
            agent=agent,
            period=period,
            errors=errors,
            choices=reports.PERIOD_CHOICES,
            days_arg=request.args.get("days", ""),
            summary=summary,
            day_chart=day_chart(summary.days),
            topic_chart=bar_chart(
                [(b.label, None, [(b.value, "open", f"{int(b.value):,}")]) for b in summary.open_by_topic]
            ),
            duration=duration,
        ), (400 if errors else 200)

    @expose("/export.csv")
    def export(self):
        """The tickets of a folder + filters (the ticket list's query string) as streamed CSV."""
        ticket_filter = TicketFilter.from_args(request.args)
        user = db.session.get(User, current_user.id)
        filename = f"tickets-{ticket_filter.folder_name}-{ticket_filter.status}-{reports.today():%Y%m%d}.csv"
        return Response(
            stream_with_context(reports.export_csv(ticket_filter, user)),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
        )


def _median_items(rows):
    return [
        (
            label,
            href,
            [
                (
                    m.first_reply,
                    "reply",
                    f"{duration(m.first_reply)} ({m.replied:,})",
                    f"median first reply {duration(m.first_reply)} over {m.replied:,} tickets",
                ),
                (
                    m.resolution,
                    "resolution",
                    f"{duration(m.resolution)} ({m.resolved:,})",
                    f"median resolution {duration(m.resolution)} over {m.resolved:,} tickets",
                ),
            ],
        )
        for label, href, m in rows
    ]
