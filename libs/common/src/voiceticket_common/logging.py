"""Structured JSON logs carrying trace_id, span_id and the call id.

A last-line filter redacts anything shaped like a phone number from messages and extra fields;
code must still never log transcripts or secrets in the first place.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from .privacy import redact_phone_numbers

current_call_sid: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_call_sid", default=None
)
"""The CallSid being handled: set by ingress's webhooks and by the bus around each record."""
current_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_tenant", default=None)

NOISY_LOGGERS = ("aiokafka", "httpx", "httpcore", "uvicorn.access")
"""Kept at WARNING whatever the level: httpx logs every request's full URL, queries included."""

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": redact_phone_numbers(record.getMessage()),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        call_sid = current_call_sid.get()
        if call_sid:
            entry["call_sid"] = call_sid
        tenant = current_tenant.get()
        if tenant:
            entry["tenant_id"] = tenant
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact_phone_numbers(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel("WARNING")
