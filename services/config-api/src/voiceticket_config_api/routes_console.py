"""The admin console: one static page at ``/admin`` over the admin API (docs/admin-console.md).

The page and its assets (``console/``: HTML, vanilla JavaScript modules, CSS, the field help in
``fields.json``) load without a token: they hold no data. Everything the page shows comes from
the admin API, called by the browser with the token the operator signs in with (kept in
``sessionStorage``, sent as ``Authorization: Bearer``). Served with a strict
Content-Security-Policy: scripts, styles and requests to config-api itself only, no inline
script or style, no frames. ``GET /v1/admin/whoami`` tells the page which token it holds (its
name and scope), so a read-only token is shown no write control.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from .auth import ADMIN, request_identity, require_role
from .openapi import AUTH_ERRORS

CONSOLE_PATH: Final = "/admin"
CSP: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}
AssetName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{0,40}\.(?:js|css|json)$")]


def console_assets() -> dict[str, bytes]:
    """Every file of ``console/`` by name (read once, when the app is created)."""
    folder = resources.files("voiceticket_config_api") / "console"
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(ext) for ext in MEDIA_TYPES)
    }


def _media_type(name: str) -> str:
    return MEDIA_TYPES["." + name.rsplit(".", 1)[-1]]


class WhoAmI(BaseModel):
    actor: str = Field(description="the token's name, as the audit log records it", examples=["alice"])
    role: str = Field(description="admin or read-only", examples=["admin"])


def console_router() -> APIRouter:
    """The page, its assets and ``/v1/admin/whoami``."""
    assets = console_assets()
    router = APIRouter()

    @router.get(CONSOLE_PATH, include_in_schema=False)
    async def console_page() -> Response:
        return Response(assets["index.html"], media_type=MEDIA_TYPES[".html"], headers=SECURITY_HEADERS)

    @router.get(CONSOLE_PATH + "/", include_in_schema=False)
    async def console_slash() -> Response:
        return RedirectResponse(CONSOLE_PATH, status_code=308, headers=SECURITY_HEADERS)

    @router.get(CONSOLE_PATH + "/assets/{name}", include_in_schema=False)
    async def console_asset(name: AssetName) -> Response:
        body = assets.get(name)
        if body is None:
            raise HTTPException(404, "no such asset")
        return Response(body, media_type=_media_type(name), headers=SECURITY_HEADERS)

    @router.get(
        "/v1/admin/whoami",
        tags=["admin console"],
        response_model=WhoAmI,
        responses=AUTH_ERRORS,
        dependencies=[Depends(require_role(ADMIN))],
    )
    async def whoami(request: Request) -> WhoAmI:
        """The presented admin token's name and scope (the console hides write controls from a
        read-only token; the API refuses its changes either way)."""
        identity = request_identity(request)
        if identity is None:  # require_role set it; kept for the type checker
            raise HTTPException(401, "missing or unknown bearer token")
        return WhoAmI(actor=identity.actor, role=identity.role)

    return router
