"""FastAPI application factory. Nothing connects at import time; the lifespan owns the DB."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.middleware.base import RequestResponseEndpoint

from voiceticket_common.bus.archive import EmbeddedArchive, EventArchive, KafkaArchive
from voiceticket_common.httpserver import NO_NATIVE_TELEMETRY, add_server_spans
from voiceticket_common.metrics import add_metrics_route

from .audit import add_audit_middleware, note_invalid, purge_audit
from .auth import ADMIN, Identity, TokenTable
from .calls_feed import calls_view, purge_calls_view
from .crypto import keyring_from_settings
from .db import create_schema, make_engine, make_sessionmaker, utcnow
from .deps import app_engine
from .docs_access import guard_docs
from .outbox import own_relay
from .routes_admin import router as admin_router
from .routes_block_list import admin_router as block_list_router
from .routes_block_list import runtime_router as block_check_router
from .routes_calls import router as calls_router
from .routes_connection import router as connection_router
from .routes_console import console_router
from .routes_privacy import admin_router as privacy_router
from .routes_privacy import runtime_router as call_keys_router
from .routes_runtime import router as runtime_router
from .routes_tokens import router as tokens_router
from .schemas import StatusOut
from .settings import Settings, parse_admin_tokens, parse_service_tokens
from .store import apply_seed
from .vault import purge_tombstones

log = logging.getLogger("voiceticket_config_api")
access_log = logging.getLogger("voiceticket_config_api.access")


def token_table(settings: Settings) -> TokenTable:
    """Every token and its identity: ``CONFIG_API_ADMIN_TOKEN`` (actor ``admin``), the named
    ``CONFIG_API_ADMIN_TOKENS`` (actor: the name) and the service tokens (actor: the role)."""
    services = parse_service_tokens(settings.service_tokens)
    admins = [(Identity(ADMIN, name), token) for name, token in parse_admin_tokens(settings.admin_tokens)]
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        admins.insert(0, (Identity(ADMIN, ADMIN), settings.admin_token.get_secret_value().encode()))
    service_tokens = {t for _, t in services}
    if any(token in service_tokens for _, token in admins):
        raise ValueError(
            "admin tokens (CONFIG_API_ADMIN_TOKEN, CONFIG_API_ADMIN_TOKENS) must differ from every service token"
        )
    if len({t for _, t in admins}) != len(admins):
        raise ValueError("CONFIG_API_ADMIN_TOKEN must differ from every CONFIG_API_ADMIN_TOKENS token")
    if not admins:
        log.warning(
            "neither CONFIG_API_ADMIN_TOKEN nor CONFIG_API_ADMIN_TOKENS is set: the admin API rejects every request"
        )
    return TokenTable([*admins, *((Identity(role, role), token) for role, token in services)])


def event_archive(settings: Settings) -> tuple[EventArchive | None, str]:
    """The event log a caller's export and erasure search, and its kind (embedded, kafka, none)."""
    if settings.event_log is not None:
        return EmbeddedArchive(settings.event_log), "embedded"
    if settings.kafka_bootstrap_servers:
        security = settings.kafka_security().client_kwargs()
        return KafkaArchive(
            settings.kafka_bootstrap_servers, settings.kafka_topic_namespace, **security
        ), "kafka"
    return None, "none"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Fail fast on bad configuration, before anything starts.
    keyring = keyring_from_settings(settings.master_keys, settings.env)
    tokens = token_table(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        try:
            await create_schema(engine)  # Alembic: upgrade to head (voiceticket_common.migrations)
            sessions = make_sessionmaker(engine)
            app.state.engine = engine
            app.state.sessions = sessions
            if settings.seed_file is not None:
                await apply_seed(sessions, keyring, settings.seed_file)
            await purge_audit(sessions, utcnow(), retention_days=settings.audit_retention_days)
            async with sessions.begin() as session:
                await purge_tombstones(session)
            log.info(
                "config-api ready (db=%s, master keys=%s, primary=%s)",
                engine.dialect.name,
                ",".join(keyring.kids),
                keyring.primary_kid,
            )
            await purge_calls_view(app, utcnow())  # the calls view's retention (calls.py)
            # The outbox's relay onto Kafka in config-api's own process (outbox.py); embedded,
            # the runtime relays onto its bus (voiceticket.embedded).
            async with own_relay(app, settings), calls_view(app):  # calls_feed.py: the calls view
                yield
        finally:
            await engine.dispose()

    # FastAPIOffline: /docs and /redoc load their assets from config-api itself (no CDN).
    app = FastAPIOffline(
        title="voiceticket config-api", version="0.1.0", lifespan=lifespan, telemetry=NO_NATIVE_TELEMETRY
    )
    app.state.settings = settings
    app.state.keyring = keyring
    app.state.tokens = tokens
    app.state.archive, app.state.archive_kind = event_archive(settings)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Same shape as FastAPI's default, minus the echoed input (it may hold a credential).
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        note_invalid(request, [d["loc"] for d in detail])  # the audit entry names the fields only
        return JSONResponse({"detail": detail}, status_code=422)

    @app.middleware("http")
    async def _no_store_and_access_log(request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        # Log the route template, never the concrete path: paths carry phone numbers.
        route = request.scope.get("route")
        access_log.info(
            "%s %s %d %.1fms",
            request.method,
            getattr(route, "path", "<unmatched>"),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.get("/healthz", tags=["ops"], response_model=StatusOut)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=StatusOut,
        responses={503: {"model": StatusOut, "description": "the database is unreachable"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        try:
            async with app_engine(request).connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    add_audit_middleware(app)  # refusals and errors of the audited routes
    app.include_router(admin_router)
    app.include_router(runtime_router)
    app.include_router(call_keys_router)
    app.include_router(privacy_router)
    app.include_router(block_list_router)  # a tenant's block list of callers (routes_block_list.py)
    app.include_router(block_check_router)
    app.include_router(tokens_router)  # named admin tokens (admin_tokens.py)
    app.include_router(calls_router)  # the calls view and dead letters (routes_calls.py)
    app.include_router(connection_router)  # tenants' connection test (routes_connection.py)
    app.include_router(console_router())  # the admin page at /admin (routes_console.py)
    add_server_spans(app)  # RED metrics by route template (runtime paths carry phone numbers)
    add_metrics_route(app)  # tokenless for Prometheus: internal only (docs/deployment.md)
    guard_docs(app, settings)  # /openapi.json: admin token; /docs, /redoc: development on loopback
    return app
