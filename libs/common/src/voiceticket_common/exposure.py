"""Is a service reachable beyond this machine? Public development secrets are refused when it is.

A bind address or a public URL that is not loopback means someone else can reach the service, so
a key everyone knows (the development callback key, config-api's development master key) would
let them forge or read what it protects, whatever ``environment`` says.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``; False for ``0.0.0.0``, ``::``, any
    other address and any other name (a name is not resolved: only loopback names count)."""

    name = host.strip().strip("[]").rstrip(".").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is loopback (see :func:`is_loopback_host`)."""

    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    return host is not None and is_loopback_host(host)
