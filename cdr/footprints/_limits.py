"""Clock safety nets of the solver, and the record of when one fired.

Every loop of the solver is bounded by a count (sets enumerated, passes, proposals), so a design
depends on the data, the options and the seed only. A clock is kept as a safety net against
pathological instances (``time_limit``) and HiGHS is given time limits (``ilp_time_limit``); when a
clock stops something the result may depend on machine speed, and :class:`Budget` records it so the
builder can say so in ``design.info["clock_events"]``.
"""
from __future__ import annotations

import time

__all__ = ["now", "Budget"]


def now() -> float:
    """Seconds on a monotonic clock (the solver's only clock; tests replace it)."""
    return time.perf_counter()


class Budget:
    """A deadline ``seconds`` from now, and the list of events where a clock changed the course.

    Examples
    --------
    >>> b = Budget(3600)
    >>> b.expired("a loop"), b.events
    (False, [])
    >>> b.record("HiGHS stopped at its time limit")
    >>> b.events
    ['HiGHS stopped at its time limit']
    """

    def __init__(self, seconds: float, events=None):
        self.start = now()
        self.deadline = self.start + float(seconds)
        self.events = [] if events is None else events

    def remaining(self) -> float:
        return self.deadline - now()

    def expired(self, what: str) -> bool:
        """True (and recorded once per ``what``) when the deadline has passed."""
        if now() <= self.deadline:
            return False
        self.record(f"time_limit reached during {what}: the result may depend on machine speed")
        return True

    def record(self, event: str) -> None:
        if event not in self.events:
            self.events.append(event)
