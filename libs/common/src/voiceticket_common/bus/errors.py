"""How handlers tell the bus what to do with a failure."""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying: timeouts, 429, 5xx. ``retry_after`` (seconds) is honoured when given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Waiting(TransientError):
    """The record must wait for something outside it, not a failure of its own: retried for the
    whole time budget (``RetryPolicy.max_total_seconds``), and such attempts do not count toward
    ``max_attempts`` (an outage does not spend the attempts of a failure that follows it)."""


class DependencyUnavailable(Waiting):
    """The deployment's own config-api (line views, call keys) is out of reach: an outage, not
    this record's fault. Retried for the whole time budget (``RetryPolicy.max_total_seconds``)
    whatever the attempt count, so a config-api restart delays calls instead of dead-lettering
    them; a provider's failure stays bounded by ``max_attempts`` too."""


class PermanentError(Exception):
    """Retrying cannot help (validation error, bad credentials): dead-letter at once."""
