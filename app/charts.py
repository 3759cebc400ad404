"""Charts as inline SVG, drawn on the server: no JavaScript, nothing fetched, one request.

A page with a chart costs what its query costs; the browser only lays out the SVG.
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape

# One colour per touchpoint type (colour-blind-safe Okabe-Ito palette, then greys).
TYPE_COLOURS = {
    "order": "#0072B2",
    "web_session": "#56B4E9",
    "ticket": "#D55E00",
    "email_sent": "#BBBBBB",
    "email_open": "#009E73",
    "email_click": "#117733",
    "email_unsubscribe": "#CC79A7",
    "nps": "#E69F00",
    "csat": "#F0E442",
}
OTHER_COLOUR = "#666666"


def _ts(value: datetime | date) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime(value.year, value.month, value.day).timestamp()


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def timeline_svg(touchpoints: list[dict], width: int = 960) -> str:
    """Every touchpoint as a mark on its channel's lane, coloured by type, hover for details."""
    if not touchpoints:
        return '<p class="muted">No touchpoints.</p>'
    channels = sorted({t["channel"] or "unknown" for t in touchpoints})
    lane, left, right, top = 26, 110, 16, 10
    height = top + lane * len(channels) + 28
    times = [_ts(t["occurred_at"]) for t in touchpoints]
    lo, hi = min(times), max(times)
    span = max(hi - lo, 86400.0)
    plot_w = width - left - right

    def x(ts: float) -> float:
        return left + (ts - lo) / span * plot_w

    parts = [
        f'<svg class="chart timeline" data-testid="timeline-chart" viewBox="0 0 {width} {height}"'
        f' width="100%" role="img" aria-label="Timeline of {len(touchpoints)} touchpoints'
        f' on {len(channels)} channels">'
    ]
    for i, channel in enumerate(channels):
        y = top + lane * i + lane / 2
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" class="lane"/>'
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" class="axis">{escape(channel)}</text>'
        )
    for tick in _ticks(lo, lo + span):
        tx = x(tick)
        label = datetime.fromtimestamp(tick).strftime("%Y-%m-%d")
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 22}" class="grid"/>'
            f'<text x="{tx:.1f}" y="{height - 6}" text-anchor="middle" class="axis">{label}</text>'
        )
    index = {c: i for i, c in enumerate(channels)}
    for t, ts in zip(touchpoints, times, strict=True):
        kind = t["touchpoint_type"]
        y = top + lane * index[t["channel"] or "unknown"] + lane / 2
        colour = TYPE_COLOURS.get(kind, OTHER_COLOUR)
        value = "" if t.get("value") is None else f" · value {t['value']:.2f}"
        title = f"{t['occurred_at']:%Y-%m-%d %H:%M} · {t['channel']} · {kind}{value}"
        parts.append(
            f'<circle cx="{x(ts):.1f}" cy="{y:.1f}" r="5" fill="{colour}" class="tp tp-{escape(kind)}">'
            f"<title>{escape(title)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(touchpoints: list[dict]) -> list[tuple[str, str, int]]:
    """(type, colour, count) for the types present."""
    counts: dict[str, int] = {}
    for t in touchpoints:
        counts[t["touchpoint_type"]] = counts.get(t["touchpoint_type"], 0) + 1
    return [(k, TYPE_COLOURS.get(k, OTHER_COLOUR), counts[k]) for k in sorted(counts)]


def trend_svg(history: list[dict], width: int = 420, height: int = 120) -> str:
    """Churn probability over the score history (0..1 axis), one point per scoring date."""
    if not history:
        return '<p class="muted">Not scored yet.</p>'
    left, right, top, bottom = 34, 10, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [_ts(h["as_of_date"]) for h in history]
    lo, hi = min(times), max(times)
    span = hi - lo

    def x(ts: float) -> float:
        return left + (plot_w / 2 if span == 0 else (ts - lo) / span * plot_w)

    def y(p: float) -> float:
        return top + (1 - p) * plot_h

    points = [(x(t), y(h["churn_probability"])) for t, h in zip(times, history, strict=True)]
    parts = [
        f'<svg class="chart trend" data-testid="churn-trend" viewBox="0 0 {width} {height}"'
        f' width="{width}" role="img" aria-label="Churn probability over {len(history)} scorings">'
    ]
    for p in (0, 0.5, 1):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(p)}" y2="{y(p)}" class="grid"/>'
            f'<text x="{left - 4}" y="{y(p) + 4}" text-anchor="end" class="axis">{p:.0%}</text>'
        )
    parts.append(
        '<polyline fill="none" class="trendline" points="'
        + " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        + '"/>'
    )
    for (px, py), h in zip(points, history, strict=True):
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" class="trendpoint">'
            f"<title>{h['as_of_date']}: {h['churn_probability']:.1%} ({escape(str(h['risk_band']))})</title></circle>"
        )
    first, last = history[0]["as_of_date"], history[-1]["as_of_date"]
    parts.append(
        f'<text x="{left}" y="{height - 4}" class="axis">{first}</text>'
        f'<text x="{width - right}" y="{height - 4}" text-anchor="end" class="axis">{last}</text>'
        "</svg>"
    )
    return "".join(parts)
