"""RetryPolicy: exponential backoff with jitter, for idempotent calls only."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent calls are retried on transient failures.

    Failed attempt ``n`` (1-based) waits ``min(initial_backoff * multiplier**(n-1), max_backoff)``
    seconds, spread by +/- ``jitter`` (a fraction), before attempt ``n + 1``.
    Retries stop after ``max_attempts`` attempts in total, or when the next
    attempt could not start before the call's deadline. Non-idempotent calls
    are never retried, whatever the policy.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2

    @classmethod
    def none(cls) -> "RetryPolicy":
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based), jitter applied."""
        base = self.initial_backoff * max(self.multiplier, 1.0) ** max(attempt - 1, 0)
        capped = min(base, self.max_backoff)
        jitter = min(max(self.jitter, 0.0), 1.0)
        return max(capped * random.uniform(1.0 - jitter, 1.0 + jitter), 0.0)


#: Reconnect backoff of image-facts watches: 100 ms doubling to 5 s, never giving up.
WATCH_BACKOFF = RetryPolicy(max_attempts=0, initial_backoff=0.1, max_backoff=5.0)
