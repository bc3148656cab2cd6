"""The statistics page's charts, drawn as SVG on the server: bars, stacked bars, a calendar, shares.

Each chart scales with its viewBox (the page's CSS gives it the width of its column), is an image
to assistive technology with a label saying what it shows, and has its numbers in a table beside
it (the template's job). Every text that goes into the markup is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup, escape

from ..memory_stats import BUTTON_TYPES, Bucket, StatisticsPage, StudentStats

WIDTH = 480  # viewBox units: about 1.3 CSS pixels each on a wide screen, 0.7 on a 375 px phone
HEIGHT = 180
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 26  # room for the axis labels


@dataclass(frozen=True)
class Series:
    """One layer of a bar chart: a name for the legend, a value per bar, and the CSS class that colours it."""

    name: str
    values: Sequence[int | float]
    tone: str


def _svg(label: str, body: str, *, height: int = HEIGHT, width: int = WIDTH) -> Markup:
    text = escape(label)
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{text}" '
                  f'preserveAspectRatio="xMidYMid meet"><title>{text}</title>{body}</svg>')


def _nice_top(value: float) -> float:
    """The axis's top: the value rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    power = 1.0
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    """An axis value, short: 500, 2.5k, 10k."""
    if value >= 1000:
        thousands = value / 1000
        return f"{thousands:.0f}k" if thousands == int(thousands) else f"{thousands:.1f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, label: str, tick_every: int = 1,
              highlight: int | None = None, height: int = HEIGHT) -> Markup:
    """Vertical bars, one per label, the series stacked; every `tick_every`th label is written under its bar."""
    count = max(1, len(labels))
    totals = [sum(float(s.values[i]) for s in series) for i in range(len(labels))]
    top = _nice_top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / count
    gap = min(2.0, slot * 0.2)
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"></line>'
                     f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_number(top * fraction)}</text>')
    for i in range(len(labels)):
        x = LEFT + i * slot + gap / 2
        width = max(0.5, min(slot - gap, 40))
        x += (slot - gap - width) / 2
        base = float(TOP + plot_h)
        for layer in series:
            value = float(layer.values[i])
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(f'<rect class="{escape(layer.tone)}" x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" '
                         f'height="{h:.1f}"></rect>')
        if highlight == i:
            parts.append(f'<rect class="today-mark" x="{x - 1:.1f}" y="{TOP:.1f}" width="{width + 2:.1f}" '
                         f'height="{plot_h:.1f}"></rect>')
        if i % tick_every == 0:
            parts.append(f'<text class="axis" x="{x + width / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{escape(labels[i])}</text>')
    return _svg(label, "".join(parts), height=height)


def legend(series: Sequence[Series]) -> Markup:
    """The series' names beside a swatch of their colour (for sighted readers; the table has the numbers)."""
    items = "".join(f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="{escape(s.tone)}" '
                    f'width="10" height="10" rx="2"></rect></svg>{escape(s.name)}</li>' for s in series)
    return Markup(f'<ul class="legend">{items}</ul>')


CELL = 8.6  # a calendar day's square, with its gap


def calendar_heatmap(counts: dict[date, int], *, last_day: date, label: str, days: int = 365,
                     bands: int = 1) -> Markup:
    """A year of days as weeks of squares (Monday on top), shaded by how many answers each day had.

    With `bands` above 1 the weeks are cut into that many blocks, one under the other: on a phone's
    width two half-years keep each square large enough to see.
    """
    first = last_day - timedelta(days=days - 1)
    start = first - timedelta(days=first.weekday())  # the Monday of the first week
    weeks = (last_day - start).days // 7 + 1
    per_band = -(-weeks // bands)
    most = max(counts.values(), default=0)
    left, top = 28, 14
    band_height = top + 7 * CELL + 6
    parts = []
    month = None
    for offset in range((last_day - start).days + 1):
        day = start + timedelta(days=offset)
        week, row = divmod(offset, 7)
        band, column = divmod(week, per_band)
        x, y = left + column * CELL, band * band_height + top + row * CELL
        if row == 0 and day.month != month and day.day <= 7:
            month = day.month
            parts.append(f'<text class="axis small" x="{x:.1f}" y="{band * band_height + top - 4}">'
                         f'{day.strftime("%b")}</text>')
        if day < first:
            continue
        count = counts.get(day, 0)
        level = 0 if count == 0 else 1 + min(3, int(4 * count / (most + 1)))
        parts.append(f'<rect class="heat-{level}" x="{x:.1f}" y="{y:.1f}" width="{CELL - 1.6:.1f}" '
                     f'height="{CELL - 1.6:.1f}" rx="1.5"></rect>')
    for band in range(bands):
        for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri")):
            parts.append(f'<text class="axis small" x="0" y="{band * band_height + top + row * CELL + 6.5:.1f}">'
                         f'{name}</text>')
    width = int(left + per_band * CELL + 2)
    return _svg(label, "".join(parts), height=int(bands * band_height), width=width)


def share_bars(rows: Sequence[tuple[str, Sequence[int]]], tones: Sequence[str], *, label: str) -> Markup:
    """One horizontal bar per row, split by the share of each value (such as the four answer buttons)."""
    left, bar_h, gap = 80, 24, 12
    plot_w = WIDTH - left - RIGHT
    parts = []
    for index, (name, values) in enumerate(rows):
        y = TOP + index * (bar_h + gap)
        parts.append(f'<text class="axis label" x="{left - 6}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end">'
                     f'{escape(name)}</text>')
        total = sum(values)
        if not total:
            parts.append(f'<rect class="bar-track" x="{left}" y="{y}" width="{plot_w}" height="{bar_h}" rx="3"></rect>')
            continue
        x = float(left)
        for value, tone in zip(values, tones, strict=True):
            w = plot_w * value / total
            if w > 0:
                parts.append(f'<rect class="{escape(tone)}" x="{x:.1f}" y="{y}" width="{w:.1f}" '
                             f'height="{bar_h}"></rect>')
                if w > 34:
                    parts.append(f'<text class="inbar" x="{x + w / 2:.1f}" y="{y + bar_h / 2 + 4:.1f}" '
                                 f'text-anchor="middle">{round(100 * value / total)}%</text>')
            x += w
    height = TOP + len(rows) * (bar_h + gap)
    return _svg(label, "".join(parts), height=int(height))


BUTTON_TONES = ("c-again", "c-hard", "c-good", "c-easy")
DAY_SERIES = (("Learning", "learning", "c-learning"), ("Review", "review", "c-review"),
              ("Relearning", "relearning", "c-relearning"))


def statistics_charts(stats: StudentStats) -> dict[str, Markup]:
    """Every chart of the statistics page, by name."""
    today = stats.today_date
    forecast_labels = [(today + timedelta(days=n)).strftime("%d %b") for n in range(len(stats.forecast))]
    days = stats.days
    year = len(days) > 60
    day_labels = [d.day.strftime("%b" if year else "%d %b") for d in days]
    day_series = [Series(name, [getattr(d, attribute) for d in days], tone) for name, attribute, tone in DAY_SERIES]
    states = stats.states

    def distribution(buckets: Sequence[Bucket], what: str, tone: str) -> Markup:
        total = sum(b.count for b in buckets)
        # Each bar is labelled with where its bucket starts; the table gives the whole ranges.
        starts = [b.label.split("–")[0] + ("+" if i == len(buckets) - 1 and "+" not in b.label else "")
                  for i, b in enumerate(buckets)]
        return bar_chart(starts, [Series(what, [b.count for b in buckets], tone)],
                         label=f"{what} of {total} cards (the table below gives the numbers)")

    answered_days = sum(1 for d in days if d.total)
    calendar_label = (f"Answers on each day of the last year: {stats.streaks.days_studied} days studied, current "
                      f"streak {stats.streaks.current} days, longest {stats.streaks.longest}")
    return {
        "forecast": bar_chart(forecast_labels, [Series("Due", stats.forecast, "c-review")], tick_every=7,
                              label=f"Cards due on each of the next {len(stats.forecast)} days, "
                                    f"{sum(stats.forecast)} in all, {stats.forecast[0]} today"),
        "forecast_weeks": bar_chart([str(n + 1) for n in range(len(stats.forecast_weeks))],
                                    [Series("Due", stats.forecast_weeks, "c-review")], height=150,
                                    label=f"Cards due in each of the next {len(stats.forecast_weeks)} weeks, "
                                          f"{sum(stats.forecast_weeks)} in all"),
        "calendar": calendar_heatmap(stats.calendar, last_day=today, label=calendar_label),
        "calendar_halves": calendar_heatmap(stats.calendar, last_day=today, label=calendar_label, bands=2),
        "days": bar_chart(day_labels, day_series, tick_every=61 if year else 7, highlight=len(days) - 1,
                          label=f"Answers on each day, learning, review and relearning stacked: "
                                f"{sum(d.total for d in days)} answers on {answered_days} of {len(days)} days"),
        "days_legend": legend(day_series),
        "intervals": distribution(states.intervals, "Review intervals in days", "c-review"),
        "stability": distribution(states.stability, "Stability in days", "c-learning"),
        "difficulty": distribution(states.difficulty, "Difficulty in percent", "c-hard"),
        "retrievability": distribution(states.retrievability, "Recall predicted now, in percent", "c-good"),
        "buttons": share_bars([(kind.capitalize(), stats.buttons[kind]) for kind in BUTTON_TYPES], BUTTON_TONES,
                              label="Share of Again, Hard, Good and Easy for learning, young and mature cards "
                                    "(the table below gives the numbers)"),
        "buttons_legend": legend([Series(name, [], tone) for name, tone
                                  in zip(("Again", "Hard", "Good", "Easy"), BUTTON_TONES, strict=True)]),
        "hours": bar_chart([str(h.hour) for h in stats.hours],
                           [Series("Correct", [h.correct for h in stats.hours], "c-good"),
                            Series("Again", [h.answers - h.correct for h in stats.hours], "c-again")],
                           tick_every=3, label="Answers in each hour of the day, correct and Again stacked "
                                               "(the table below gives the numbers)"),
        "hours_legend": legend([Series("Correct", [], "c-good"), Series("Again", [], "c-again")]),
    }


def statistics_tables(stats: StudentStats) -> dict[str, list[tuple[str, ...]]]:
    """The charts' numbers as table rows (the text alternative of each chart), by chart name."""
    today = stats.today_date

    def n(value: int) -> str:
        return f"{value:,}"

    def share(part: int, whole: int) -> str:
        return f"{round(100 * part / whole)}%" if whole else "–"

    tables: dict[str, list[tuple[str, ...]]] = {
        "forecast": [((today + timedelta(days=i)).strftime("%a %d %b"), n(due))
                     for i, due in enumerate(stats.forecast)],
        "forecast_weeks": [(f"Week {i + 1} (from {(today + timedelta(days=7 * i)).strftime('%d %b')})", n(due))
                           for i, due in enumerate(stats.forecast_weeks)],
        "calendar": [(day.strftime("%a %d %b %Y"), n(answers)) for day, answers in sorted(stats.calendar.items())],
        "days": [(d.day.strftime("%a %d %b %Y"), n(d.learning), n(d.review), n(d.relearning), n(d.total))
                 for d in stats.days if d.total],
        "buttons": [(kind.capitalize(), *(n(v) for v in stats.buttons[kind]),
                     share(sum(stats.buttons[kind][1:]), sum(stats.buttons[kind]))) for kind in BUTTON_TYPES],
        "hours": [(f"{h.hour:02d}:00", n(h.answers), share(h.correct, h.answers)) for h in stats.hours if h.answers],
    }
    states = stats.states
    for name, buckets in (("intervals", states.intervals), ("stability", states.stability),
                          ("difficulty", states.difficulty), ("retrievability", states.retrievability)):
        tables[name] = [(bucket.label, n(bucket.count)) for bucket in buckets]
    return tables


def page_context(page: StatisticsPage) -> dict[str, Any]:
    """What the statistics templates are given: the page, its numbers, its charts and their tables."""
    return {"page": page, "stats": page.stats, "charts": statistics_charts(page.stats),
            "tables": statistics_tables(page.stats)}
