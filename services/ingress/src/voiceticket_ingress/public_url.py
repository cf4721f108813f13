"""The URL Twilio requested, which is what its signature covers.

Behind TLS termination, a load balancer or an ingress controller, the request ingress sees is not
the one Twilio made (http instead of https, an internal host or port). Two sources of truth:

* ``VOICETICKET_PUBLIC_BASE_URL``: the configured public base (scheme, host, port, path prefix);
* X-Forwarded-Proto / X-Forwarded-Host / X-Forwarded-Port, **only** when the direct peer is in
  ``VOICETICKET_TRUSTED_PROXIES``. From any other peer these headers are attacker-controlled and
  ignored: otherwise a request signed for another deployment (say staging, on the same Twilio
  account) could be replayed here by naming that deployment's host.

Where a proxy appends to a header (``a, b``), the last value is the one the trusted proxy itself
set. Forwarded headers give scheme, host and port only: a path prefix the proxy strips needs
``VOICETICKET_PUBLIC_BASE_URL``. The RFC 7239 ``Forwarded`` header is not read.

The URL resolved here is the only one a signature is checked against (``signature.py``): no
variant with the port removed or a default port added. So ``VOICETICKET_PUBLIC_BASE_URL`` must be
written exactly as the URLs configured in Twilio (a non-default port included, a default port
left out); from a trusted proxy, a default X-Forwarded-Port is left out and any other is kept.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.requests import Request

from .settings import IPNetwork

_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$")  # fmt: skip
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only ("²".isdigit() is True)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class PublicUrl:
    """Resolves the public origin of a webhook request and the full URL Twilio signed."""

    def __init__(self, public_base_url: str, trusted_proxies: Sequence[IPNetwork]) -> None:
        self._base = public_base_url.rstrip("/")
        self._trusted = tuple(trusted_proxies)

    def peer_is_trusted(self, request: Request) -> bool:
        if not self._trusted or request.client is None:
            return False
        try:
            peer = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(peer in network for network in self._trusted)

    def base(self, request: Request) -> str:
        """Scheme://host[:port][/prefix] Twilio used to reach this request."""
        if not self.peer_is_trusted(request):
            return self._base
        proto = _last(request.headers.get("x-forwarded-proto"))
        host = _last(request.headers.get("x-forwarded-host"))
        port = _last(request.headers.get("x-forwarded-port"))
        if not proto and not host:
            return self._base
        if (proto and proto.lower() not in _DEFAULT_PORTS) or (host and not _HOST.fullmatch(host)):
            return self._base  # a malformed value: none of these headers is trusted then
        scheme = proto.lower() or request.url.scheme
        host = host or request.headers.get("host", "")
        if not _HOST.fullmatch(host):
            return self._base
        if _PORT.fullmatch(port) and not _has_port(host) and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        return f"{scheme}://{host}"

    def of(self, request: Request) -> str:
        """The full URL as Twilio requested it: public base + path + raw query string."""
        url = self.base(request) + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        return url


def _last(value: str | None) -> str:
    return value.rsplit(",", 1)[-1].strip() if value else ""


def _has_port(host: str) -> bool:
    return bool(re.search(r":[0-9]+\Z", host)) and not host.endswith("]")
