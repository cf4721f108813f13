"""What the OpenAPI document says about errors, shared by every route.

Every error is ``{"detail": "<message>"}`` (``ErrorOut``), except request validation: 422 with
FastAPI's documented ``HTTPValidationError`` shape (``{"detail": [{"loc", "msg", "type"}]}``),
which FastAPI adds to every operation with parameters or a body. Checks that need the database
(an unknown tenant, a number differing from the path) raise ``invalid`` to answer in that same
shape. ``tests/test_config_api_openapi.py`` runs schemathesis against the document: a status,
content type or body that is not declared here fails it.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from .schemas import ErrorOut

_WHY = {
    400: "the request body is not JSON (e.g. not UTF-8)",
    401: "missing or unknown bearer token",
    403: "the token's role may not use this endpoint",
    404: "not found",
    409: "conflict: it already exists, or a concurrent change won",
    500: "the stored configuration cannot be served (see the logs)",
}


def errors(*codes: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the given status codes, each an ``ErrorOut``; ``described`` overrides
    the default description of a code."""
    described = described or {}
    return {code: {"model": ErrorOut, "description": described.get(code, _WHY[code])} for code in codes}


AUTH_ERRORS = errors(401, 403)


def invalid(loc: tuple[str | int, ...], msg: str) -> RequestValidationError:
    """A 422 in the shape of every other validation error (``HTTPValidationError``)."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])
