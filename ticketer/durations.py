"""Time spans for people: 42s, 5m, 3h 20m, 2d 4h (the dashboard's medians, the lists' SLA clocks)."""


def span(seconds: float | None) -> str:
    """The span in its two largest units, rounded to the second; "—" for no value. No sign: the
    caller says which way ("Overdue 5m", "5m left")."""
    if seconds is None:
        return "—"
    seconds = abs(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes}m"
    if seconds < 86400:
        return f"{hours}h {minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{days}d {hours % 24}h" if hours % 24 else f"{days}d"
