"""FastAPI application factory. Nothing connects at import time; the lifespan owns the DB."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.middleware.base import RequestResponseEndpoint

from voiceticket_common.httpserver import NO_NATIVE_TELEMETRY, add_server_spans
from voiceticket_common.metrics import add_metrics_route

from .auth import ADMIN, TokenTable
from .crypto import keyring_from_settings
from .db import create_schema, make_engine, make_sessionmaker
from .deps import app_engine
from .routes_admin import router as admin_router
from .routes_runtime import router as runtime_router
from .settings import Settings, parse_service_tokens
from .store import apply_seed

log = logging.getLogger("voiceticket_config_api")
access_log = logging.getLogger("voiceticket_config_api.access")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Fail fast on bad configuration, before anything starts.
    keyring = keyring_from_settings(settings.master_keys, settings.env)
    entries = parse_service_tokens(settings.service_tokens)
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        admin = settings.admin_token.get_secret_value().encode()
        if admin in {t for _, t in entries}:
            raise ValueError("CONFIG_API_ADMIN_TOKEN must differ from every service token")
        entries.insert(0, (ADMIN, admin))
    else:
        log.warning("CONFIG_API_ADMIN_TOKEN is not set: the admin API rejects every request")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        try:
            await create_schema(engine)  # Alembic migrations come with the full config-api issue
            sessions = make_sessionmaker(engine)
            app.state.engine = engine
            app.state.sessions = sessions
            if settings.seed_file is not None:
                await apply_seed(sessions, keyring, settings.seed_file)
            log.info(
                "config-api ready (db=%s, master keys=%s, primary=%s)",
                engine.dialect.name,
                ",".join(keyring.kids),
                keyring.primary_kid,
            )
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="voiceticket config-api", version="0.1.0", lifespan=lifespan, telemetry=NO_NATIVE_TELEMETRY
    )
    app.state.settings = settings
    app.state.keyring = keyring
    app.state.tokens = TokenTable(tuple(entries))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Same shape as FastAPI's default, minus the echoed input (it may hold a credential).
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
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

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        try:
            async with app_engine(request).connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    app.include_router(admin_router)
    app.include_router(runtime_router)
    add_server_spans(app)  # RED metrics by route template (runtime paths carry phone numbers)
    add_metrics_route(app)
    return app
