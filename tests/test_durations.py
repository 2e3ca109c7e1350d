"""One way to show a time span to people: the dashboard's medians and the SLA clocks of the lists."""

from datetime import UTC, datetime, timedelta

import pytest

from ticketer.durations import span
from ticketer.models.supervision import SLABreach
from ticketer.ticket_deadlines import Clock


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        (0, "0s"),
        (42.4, "42s"),
        (59.6, "1m"),
        (300, "5m"),
        (3600, "1h"),
        (3 * 3600 + 20 * 60 + 59, "3h 20m"),
        (86400, "1d"),
        (2 * 86400 + 4 * 3600 + 59 * 60, "2d 4h"),
        (-300, "5m"),  # a span has no sign: "overdue" says which way
    ],
)
def test_span(seconds, shown):
    assert span(seconds) == shown


def test_the_sla_clocks_show_spans_the_same_way():
    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert Clock(SLABreach.Kind.FIRST_REPLY, now + timedelta(hours=2), now).label == "2h left to reply"
    assert Clock(SLABreach.Kind.RESOLUTION, now + timedelta(minutes=30), now).label == "30m left to resolve"
    assert Clock(SLABreach.Kind.RESOLUTION, now - timedelta(days=2, hours=4), now).label == "Overdue 2d 4h"
    assert Clock(SLABreach.Kind.FIRST_REPLY, now - timedelta(seconds=42), now).label == "Overdue 42s"
