"""Structured JSON logs carrying trace_id, span_id and the call id; readable lines on a terminal.

A last-line filter redacts anything shaped like a phone number from messages and extra fields;
code must still never log transcripts or secrets in the first place.

The format (``VOICETICKET_LOG_FORMAT``): ``json`` (one JSON object a line, for collectors),
``text`` (``12:00:01.234 INFO  logger: message  call_sid=...``, for people), or ``auto`` (the
default): text when the log stream is a terminal, JSON otherwise. Neither carries ANSI colour
codes (uvicorn adds a coloured copy of some messages as ``color_message``: dropped).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from opentelemetry import trace

from .privacy import redact_phone_numbers

current_call_sid: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_call_sid", default=None
)
"""The CallSid being handled: set by ingress's webhooks and by the bus around each record."""
current_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_tenant", default=None)

NOISY_LOGGERS = ("aiokafka", "httpx", "httpcore", "uvicorn.access", "alembic")
"""Kept at WARNING whatever the level: httpx logs every request's full URL, queries included."""

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_DROPPED = {"color_message"}  # uvicorn's coloured copy of the message
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOG_FORMATS = ("auto", "json", "text")
LOG_FORMAT_ENV = "VOICETICKET_LOG_FORMAT"


def _clean(value: str) -> str:
    return redact_phone_numbers(_ANSI.sub("", value))


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """The record's trace, call, tenant and extra fields (cleaned), in that order."""
    entry: dict[str, Any] = {}
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
        if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
            entry[key] = _clean(value) if isinstance(value, str) else value
    if record.exc_info and record.exc_info[0] is not None:
        entry["exc_type"] = record.exc_info[0].__name__
        entry["exc_where"] = _where(record.exc_info[2])
    return entry


def _where(tb: TracebackType | None, frames: int = 6) -> list[str]:
    """Where an exception was raised: the innermost ``frames`` frames as ``file.py:line function``,
    innermost last. Code locations only: never the message or a value, which may hold a caller's
    number or words (the reason a log line has the exception's type and not its text)."""
    return [f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)[-frames:]]


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
            "msg": _clean(record.getMessage()),
        }
        entry.update(_context(record))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """One readable line a record: time, level, logger, message, then the context as key=value
    (trace and span ids left out; nested extras as compact JSON). Same redaction as JSON."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{at} {record.levelname:<7} {record.name}: {_clean(record.getMessage())}"
        context = {k: v for k, v in _context(record).items() if k not in ("trace_id", "span_id")}
        if context:
            line += "  " + " ".join(
                f"{k}={v if isinstance(v, str) else json.dumps(v, default=str, separators=(',', ':'))}"
                for k, v in context.items()
            )
        return line


def log_format(stream: Any, wanted: str | None = None) -> str:
    """``json`` or ``text``: ``wanted`` (else ``VOICETICKET_LOG_FORMAT``, else ``auto``), where
    ``auto`` is text on a terminal and JSON otherwise."""
    chosen = (wanted or os.environ.get(LOG_FORMAT_ENV) or "auto").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"{LOG_FORMAT_ENV} must be one of {', '.join(LOG_FORMATS)}, not {chosen!r}")
    if chosen == "auto":
        isatty = getattr(stream, "isatty", None)
        return "text" if isatty is not None and isatty() else "json"
    return chosen


def setup_logging(service: str, level: str = "INFO", fmt: str | None = None) -> None:
    """Log to stdout as ``fmt`` (``auto``, ``json``, ``text``; default ``VOICETICKET_LOG_FORMAT``)."""
    handler = logging.StreamHandler(sys.stdout)
    chosen = log_format(sys.stdout, fmt)
    handler.setFormatter(JsonFormatter(service) if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel("WARNING")
