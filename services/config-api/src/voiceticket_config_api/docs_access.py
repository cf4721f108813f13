"""Who may read config-api's API description (``/openapi.json``) and interactive docs.

Open (no token) only where ``Settings.docs_open`` says so: a developer's config-api on loopback,
or ``CONFIG_API_DOCS=true`` outside production. Everywhere else ``/openapi.json`` needs the admin
token (401 without one, 403 for a service token) and ``/docs`` and ``/redoc`` answer 404: the
schema is the map of the admin API, and the interactive pages cannot send a token. ``/metrics``,
``/healthz`` and ``/readyz`` stay tokenless for Prometheus and the probes: internal only
(docs/deployment.md, "What is public").
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.base import RequestResponseEndpoint

from .auth import ADMIN, TokenTable
from .settings import Settings

DOC_PAGES = ("/docs", "/docs/oauth2-redirect", "/redoc")
NO_STORE = {"Cache-Control": "no-store"}


def guard_docs(app: FastAPI, settings: Settings) -> None:
    """Apply the docs policy to ``app`` (whatever serves its docs: FastAPI or FastAPIOffline)."""

    if settings.docs_open:
        return
    schema = app.openapi_url or "/openapi.json"

    @app.middleware("http")
    async def _docs_need_the_admin_token(request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if path in DOC_PAGES:
            return JSONResponse(
                {"detail": "interactive docs are off here; GET /openapi.json with the admin token"},
                status_code=404,
                headers=NO_STORE,
            )
        if path == schema:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            tokens: TokenTable = request.app.state.tokens
            role = tokens.role_for(presented.strip()) if scheme.lower() == "bearer" and presented else None
            if role is None:
                return JSONResponse(
                    {"detail": "missing or unknown bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer", **NO_STORE},
                )
            if role != ADMIN:
                detail = f"role '{role}' may not use this endpoint"
                return JSONResponse({"detail": detail}, status_code=403, headers=NO_STORE)
        return await call_next(request)
