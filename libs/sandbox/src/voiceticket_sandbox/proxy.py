"""A stand-in for a TLS-terminating load balancer or ingress controller in front of ingress.

It forwards every request to ``upstream`` over plain HTTP and says what the client asked for in
X-Forwarded-Proto (the public scheme, ``https`` by default), X-Forwarded-Host (the Host the
client sent), X-Forwarded-Port and X-Forwarded-For, as ingress-nginx and cloud load balancers do.
Serve it with ``voiceticket_sandbox.server.serve_app``.
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class ForwardingProxy:
    """ASGI app: ``await serve_app(ForwardingProxy("http://127.0.0.1:8080"))``."""

    def __init__(self, upstream: str, public_scheme: str = "https") -> None:
        self.upstream = upstream.rstrip("/")
        self.public_scheme = public_scheme
        self.forwarded: list[dict[str, str]] = []  # the X-Forwarded-* headers of each request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        forwarded = {
            "X-Forwarded-Proto": self.public_scheme,
            "X-Forwarded-Host": request.headers.get("host", ""),
            "X-Forwarded-Port": "443" if self.public_scheme == "https" else "80",
            "X-Forwarded-For": request.client.host if request.client else "",
        }
        self.forwarded.append(forwarded)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        async with httpx.AsyncClient(timeout=15) as client:
            upstream = await client.request(
                request.method, target, content=body, headers={**headers, **forwarded}
            )
        kept = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in _HOP_BY_HOP | {"content-length", "content-encoding"}
        }
        await Response(upstream.content, upstream.status_code, headers=kept)(scope, receive, send)
