"""How the host retries a failing activity."""

import math

from ._bindings import types


class RetryPolicy:
    """How `schedule_activity(..., retry=policy)` retries a failing
    activity. The host runs the retries: after failed attempt n (from 1) it
    waits `initial_backoff * backoff_coefficient ** (n - 1)` seconds, capped
    at `max_backoff`, on a durable timer, then tries again, up to
    `max_attempts` attempts in all. `attempt_timeout` fails an attempt that
    has not finished in time (it is cancelled and its late result
    ignored); `total_timeout` starts no attempt whose backoff would end
    later than that after the first attempt started. Durations are seconds.
    """

    __slots__ = (
        "max_attempts",
        "initial_backoff",
        "backoff_coefficient",
        "max_backoff",
        "attempt_timeout",
        "total_timeout",
    )

    def __init__(
        self,
        max_attempts=3,
        initial_backoff=1.0,
        backoff_coefficient=2.0,
        max_backoff=60.0,
        attempt_timeout=None,
        total_timeout=None,
    ):
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise ValueError(f"max_attempts must be a whole number of at least 0, not {max_attempts!r}")
        if not math.isfinite(backoff_coefficient) or backoff_coefficient < 0:
            raise ValueError(
                f"backoff_coefficient must be finite and not negative, not {backoff_coefficient!r}"
            )
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.backoff_coefficient = float(backoff_coefficient)
        self.max_backoff = max_backoff
        self.attempt_timeout = attempt_timeout
        self.total_timeout = total_timeout
        # Checked now, where the mistake is, rather than when the host reads it.
        self._to_wit()

    def _to_wit(self):
        def ms(seconds, what):
            if seconds is None:
                return None
            if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
                raise ValueError(f"{what} must be a number of seconds of at least 0, not {seconds!r}")
            return round(seconds * 1000)

        return types.RetryPolicy(
            max_attempts=self.max_attempts,
            initial_backoff_ms=ms(self.initial_backoff, "initial_backoff"),
            backoff_coefficient=self.backoff_coefficient,
            max_backoff_ms=ms(self.max_backoff, "max_backoff"),
            attempt_timeout_ms=ms(self.attempt_timeout, "attempt_timeout"),
            total_timeout_ms=ms(self.total_timeout, "total_timeout"),
        )

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RetryPolicy({fields})"
