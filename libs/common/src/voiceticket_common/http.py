"""Outbound HTTP to providers: the egress guard, client spans, and failure classification.

The egress guard (``AllowListTransport``) checks every request before it leaves, in this order;
each refusal is an ``EgressDenied`` (a ``PermanentError``) whose message names the rule:

* **scheme**: ``https`` only; plain ``http`` only to hosts listed with ``http://``.
* **user-info**: a URL with user-info (``https://user@host/``) is refused outright: it is how
  ``http://api.twilio.com@127.0.0.1/`` dresses one host up as another.
* **host**: the host must match an entry; ``*.example.com`` matches names under it (never the
  name itself, never an IP address). A wildcard admits every name under it, including ones
  anybody can register (``*.atlassian.net``): prefer exact names where the set is known.
* **port**: the scheme's default (443, 80) unless the entry names one (``host:8443``) or any
  (``host:*``).
* **address**: when a connection is opened, the host is resolved (asynchronously, off the event
  loop) and every address it resolves to must be publicly routable: loopback, link-local (the
  cloud metadata address 169.254.169.254, fe80::/10), private (RFC 1918, fc00::/7), unspecified,
  multicast and other reserved addresses are refused unless a CIDR entry (``127.0.0.0/8``)
  allows them, or the entry's host is that IP address itself. The connection goes to the
  address that was checked (the resolver is not asked again between check and connect, so a
  DNS answer that changes in between cannot redirect it); TLS still verifies the certificate
  for, and sends SNI and ``Host`` with, the host name of the URL.

**Tenant hosts.** A tenant's configured provider servers (speech-to-text's and the LLM's base
URLs) are allowed for that tenant's requests to that provider without an entry: the adapter makes
the request inside ``with tenant_hosts(base_url):``, which admits exactly that URL's scheme, host
and port for the requests of the block (a context variable, so no other tenant's request and no
other provider's). A host admitted only so, and named by no entry, has a stricter address rule:
its addresses must be publicly routable or inside a CIDR entry (the operator's private ranges);
link-local (169.254.169.254, fe80::/10) never, whatever the entries; an IP address does not
admit itself; and plain ``http`` only to addresses inside a CIDR entry (never across the public
internet). ``VOICETICKET_EGRESS_ALLOW_TENANT_HOSTS=false`` (``allow_tenant_hosts=False``) turns
tenant hosts off: then only the entries allow anything.

Entries (``VOICETICKET_EGRESS_ALLOWED_HOSTS``)::

    api.twilio.com          https, port 443
    *.atlassian.net         https, port 443, any name under atlassian.net
    https://llm.corp:8443   https, port 8443
    http://127.0.0.1:*      plain http, any port, to 127.0.0.1 (allowed as an address too)
    127.0.0.0/8             resolved addresses in this network are allowed (no host by itself)
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeAlias

import anyio
import httpcore
import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import metrics
from .bus.errors import PermanentError, TransientError
from .logging import current_tenant
from .tracing import start_span

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> addresses``; the default asks the system resolver in a worker thread."""

DEFAULT_PORTS = {"https": 443, "http": 80}
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class EgressDenied(PermanentError):
    """The application refused to call a URL or address the egress rules do not allow."""


@dataclass(frozen=True)
class HostRule:
    """One ``[scheme://]host[:port|:*]`` entry; ``port`` None is any port."""

    scheme: str
    host: str
    port: int | None

    def matches_host(self, host: str) -> bool:
        if self.host.startswith("*."):
            return _ip(host) is None and host.endswith(self.host[1:])
        return host == self.host


@dataclass(frozen=True)
class EgressPolicy:
    rules: tuple[HostRule, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressPolicy:
        """Raises ``ValueError`` naming the first entry that is not a host rule or a network."""

        rules: list[HostRule] = []
        networks: list[IPNetwork] = []
        for entry in entries:
            parsed = _parse_entry(entry)
            if isinstance(parsed, HostRule):
                rules.append(parsed)
            else:
                networks.append(parsed)
        return cls(tuple(rules), tuple(networks))

    def check_url(self, url: httpx.URL, provider: str, tenant: Sequence[HostRule] = ()) -> None:
        """Scheme, user-info, host and port of ``url``; raises ``EgressDenied``. ``tenant``: the
        origins of the tenant's configured servers (``tenant_hosts``), allowed as they are."""

        scheme = url.scheme
        if scheme not in DEFAULT_PORTS:
            raise EgressDenied(f"egress refused ({provider}): scheme {scheme!r} is not allowed")
        host = _normalise_host(url.raw_host.decode("ascii"))
        if url.userinfo:  # never echo it: it may be a password
            raise EgressDenied(f"egress refused ({provider}): URL to {host!r} carries user-info")
        if HostRule(scheme, host, url.port or DEFAULT_PORTS[scheme]) in tenant:
            return
        candidates = [rule for rule in self.rules if rule.matches_host(host)]
        if not candidates:
            raise EgressDenied(f"egress refused ({provider}): host {host!r} is not in the egress allow-list")
        candidates = [rule for rule in candidates if rule.scheme == scheme]
        if not candidates:
            raise EgressDenied(
                f"egress refused ({provider}): scheme {scheme!r} is not allowed for host {host!r}"
                + (" (https only)" if scheme == "http" else "")
            )
        port = url.port or DEFAULT_PORTS[scheme]
        if not any(rule.port is None or rule.port == port for rule in candidates):
            raise EgressDenied(f"egress refused ({provider}): port {port} is not allowed for host {host!r}")

    def tenant_scheme(self, host: str, port: int, tenant: Sequence[HostRule]) -> str | None:
        """None when an entry allows connections to ``host:port`` (over a scheme the tenant
        origins use, if any reach it); else the scheme a tenant host is reached over: ``https``
        if a tenant origin says so, ``http`` otherwise (also when none is visible: the strictest)."""
        host = _normalise_host(host)
        schemes = {rule.scheme for rule in tenant if rule.host == host and rule.port == port}
        entries = [r for r in self.rules if r.matches_host(host) and r.port in (None, port)]
        if entries and (not schemes or any(r.scheme in schemes for r in entries)):
            return None
        return "https" if "https" in schemes else "http"

    def _in_networks(self, address: IPAddress) -> bool:
        embedded = _embedded_ipv4(address)
        return any(
            a in n
            for a in (address, embedded)
            if a is not None
            for n in self.networks
            if a.version == n.version
        )

    def check_address(
        self, host: str, address: IPAddress, provider: str, tenant_scheme: str | None = None
    ) -> None:
        """The address rule for one address ``host`` resolved to (or is); raises ``EgressDenied``.
        ``tenant_scheme``: ``host`` is only a tenant host (no entry names it), reached over that
        scheme: the stricter rule of the module docstring."""

        if tenant_scheme is not None:
            self._check_tenant_address(_normalise_host(host), address, provider, tenant_scheme)
            return
        embedded = _embedded_ipv4(address)
        if self._in_networks(address):
            return
        host = _normalise_host(host)
        literal = _ip(host)
        if literal is not None and literal == address and any(r.host == host for r in self.rules):
            return  # the entry names this very address
        category = _non_public(embedded or address)
        if category is not None:
            raise EgressDenied(
                f"egress refused ({provider}): host {host!r} resolves to {category} address {address}"
                " (allow it with a CIDR entry)"
            )

    def _check_tenant_address(self, host: str, address: IPAddress, provider: str, scheme: str) -> None:
        category = _non_public(_embedded_ipv4(address) or address)
        if category == "link-local":
            raise EgressDenied(
                f"egress refused ({provider}): tenant host {host!r} resolves to link-local address {address}"
            )
        if self._in_networks(address):
            return
        if category is not None:
            raise EgressDenied(
                f"egress refused ({provider}): tenant host {host!r} resolves to {category} address {address}"
                " (allow it with a CIDR entry)"
            )
        if scheme != "https":
            raise EgressDenied(
                f"egress refused ({provider}): plain http to tenant host {host!r} at public address"
                f" {address} (use https)"
            )


_tenant_origins: ContextVar[tuple[HostRule, ...]] = ContextVar("voiceticket_tenant_origins", default=())


@contextmanager
def tenant_hosts(*base_urls: str) -> Iterator[None]:
    """Allow the origins (scheme, host, port) of ``base_urls``, a tenant's configured provider
    servers, for the requests made in this block (module docstring: tenant hosts). A URL that is
    not an absolute http(s) one without user-info admits nothing."""

    token = _tenant_origins.set(tuple(rule for url in base_urls if (rule := _origin(url)) is not None))
    try:
        yield
    finally:
        _tenant_origins.reset(token)


def _origin(base_url: str) -> HostRule | None:
    try:
        url = httpx.URL(base_url)
        host = _normalise_host(url.raw_host.decode("ascii"))
    except (httpx.InvalidURL, UnicodeDecodeError):
        return None
    if url.scheme not in DEFAULT_PORTS or url.userinfo or not host or "*" in host:
        return None
    return HostRule(url.scheme, host, url.port or DEFAULT_PORTS[url.scheme])


def _parse_entry(entry: str) -> HostRule | IPNetwork:
    text = entry.strip().lower()
    problem = f"egress entry {entry!r}: "
    if "/" in text and "://" not in text:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(problem + "not a CIDR network") from None
    scheme = "https"
    if "://" in text:
        scheme, text = text.split("://", 1)
        if scheme not in DEFAULT_PORTS:
            raise ValueError(problem + "the scheme must be https or http")
    if not text or any(c in text for c in "/@?#\\ "):
        raise ValueError(problem + "expected [scheme://]host[:port|:*]")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if _ip(host) is None or (rest and not rest.startswith(":")):
            raise ValueError(problem + "not a bracketed IPv6 address")
        port_text = rest[1:] if rest else ""
    else:
        if text.count(":") > 1:
            raise ValueError(problem + "write IPv6 addresses in brackets: [::1]:*")
        host, _, port_text = text.partition(":")
    port: int | None
    if not port_text and ":" not in text.rsplit("]", 1)[-1]:
        port = DEFAULT_PORTS[scheme]
    elif port_text == "*":
        port = None
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise ValueError(problem + "the port must be a number or *")
    literal = _ip(host)
    if literal is not None:
        host = literal.compressed
    elif host == "*" or "*" in host.removeprefix("*.") or not _NAME.fullmatch(host.removeprefix("*.")):
        raise ValueError(problem + "the host must be a name, *.name or an IP address")
    return HostRule(scheme, host, port)


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normalise_host(host: str) -> str:
    host = host.lower()
    literal = _ip(host)
    return literal.compressed if literal is not None else host


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) one."""

    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _non_public(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "private"
    if address.is_reserved or not address.is_global:
        return "non-public"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (``getaddrinfo`` in a worker thread)."""

    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _CheckedAddressBackend(httpcore.AsyncNetworkBackend):
    """Opens each connection to an address that passed the address rule, never to a name."""

    def __init__(self, policy: EgressPolicy, provider: str, resolver: Resolver) -> None:
        self._policy = policy
        self._provider = provider
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def _addresses(self, host: str, port: int, limit: float | None) -> list[IPAddress]:
        literal = _ip(host)
        if literal is not None:
            names = [host]
        else:
            try:
                with anyio.fail_after(limit):
                    names = list(await self._resolver(host, port))
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
            except OSError as exc:
                raise httpcore.ConnectError(f"could not resolve {host!r}: {exc}") from None
        addresses = [ipaddress.ip_address(name) for name in names]
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} resolved to no address")
        tenant_scheme = self._policy.tenant_scheme(host, port, _tenant_origins.get())
        for address in addresses:  # all of them, so that no answer order lets a bad one through
            self._policy.check_address(host, address, self._provider, tenant_scheme)
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied(f"egress refused ({self._provider}): unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _checked_address_transport(
    policy: EgressPolicy, provider: str, resolver: Resolver, verify: ssl.SSLContext | bool
) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(retries=0, verify=verify)
    # httpx has no public way to give its transport a network backend; the pool it builds is
    # replaced by the same pool on ours (test_http_egress pins this: it fails if httpx stops
    # using ``_pool``). Keep the pool's defaults in step with httpx's (DEFAULT_LIMITS).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        retries=0,
        network_backend=_CheckedAddressBackend(policy, provider, resolver),
    )
    return transport


class AllowListTransport(httpx.AsyncBaseTransport):
    """The egress guard (module docstring) around each call, and a client span.

    ``inner`` replaces the network (tests with ``httpx.MockTransport``): the address rule is then
    the inner transport's business, the URL rules still apply. ``resolver`` and ``verify`` are
    for tests too (a stub DNS, a local CA). ``allow_tenant_hosts`` False ignores ``tenant_hosts``.
    """

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        provider: str,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        allow_tenant_hosts: bool = True,
    ) -> None:
        self._policy = EgressPolicy.parse(allowed_hosts)
        self._provider = provider
        self._allow_tenant_hosts = allow_tenant_hosts
        self._inner = inner or _checked_address_transport(
            self._policy, provider, resolver or system_resolver, verify
        )

    @property
    def policy(self) -> EgressPolicy:
        return self._policy

    def _denied(self) -> None:
        metrics.provider_request(self._provider, "denied", current_tenant.get(), None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            tenant = _tenant_origins.get() if self._allow_tenant_hosts else ()
            self._policy.check_url(request.url, self._provider, tenant)
        except EgressDenied:
            self._denied()
            raise
        host = request.url.host
        # The path as a template, never the query: SIDs, issue keys and ids become placeholders,
        # so span names stay few and nothing shaped like a number is recorded.
        template = url_template(request.url.path)
        started = time.perf_counter()
        with start_span(
            f"{request.method} {template}",
            SpanKind.CLIENT,
            {
                "http.request.method": request.method,
                "url.template": template,
                "server.address": host,
                "server.port": request.url.port or DEFAULT_PORTS.get(request.url.scheme, 0),
                "voiceticket.provider": self._provider,
            },
        ) as span:
            try:
                response = await self._inner.handle_async_request(request)
            except EgressDenied as exc:  # the address rule, when the connection was opened
                self._denied()
                span.set_status(Status(StatusCode.ERROR, "egress denied"))
                span.set_attribute("error.type", type(exc).__name__)
                raise
            except httpx.HTTPError:
                metrics.provider_request(
                    self._provider, "error", current_tenant.get(), time.perf_counter() - started
                )
                raise
            klass = metrics.provider_status_class(response.status_code)
            metrics.provider_request(
                self._provider, klass, current_tenant.get(), time.perf_counter() - started
            )
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
                span.set_attribute("error.type", str(response.status_code))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]+-\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LONG_NUMBER = re.compile(r"\d{4,}")


def url_template(path: str) -> str:
    """``/2010-04-01/Accounts/AC…/Recordings/RE….wav`` → ``/2010-04-01/Accounts/{sid}/Recordings/{sid}.wav``.

    Twilio SIDs become ``{sid}``, Jira issue keys ``{issueKey}``, and any other segment with four
    or more digits in a row (numeric ids, and anything that could be a phone number) ``{id}``.
    API versions (``v1``, ``3``, ``2010-04-01``) stay.
    """

    segments = []
    for segment in path.split("/"):
        segment = _SID.sub("{sid}", segment)
        if _ISSUE_KEY.fullmatch(segment):
            segment = "{issueKey}"
        elif not _DATE.fullmatch(segment) and (_LONG_NUMBER.search(segment) or "@" in segment):
            segment = "{id}"
        segments.append(segment)
    return "/".join(segments)


def provider_client(
    provider: str, allowed_hosts: Sequence[str], timeout: float = 30.0, *, allow_tenant_hosts: bool = True
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AllowListTransport(allowed_hosts, provider, allow_tenant_hosts=allow_tenant_hosts),
        timeout=httpx.Timeout(timeout, connect=10.0),
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header; ``headers`` is case-insensitive (httpx or httpx2 ``Headers``)."""

    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_provider_status(response: httpx.Response, provider: str, what: str) -> None:
    """Turn an error response into Transient (429, 5xx, 408) or Permanent (other 4xx) errors.

    The message names the provider, operation and status plus the provider's own short error text
    (which describes fields, not our data) so that a dead-lettered record says what went wrong.
    """

    status = response.status_code
    if status < 400:
        return
    detail = _short_error(response)
    message = f"{provider} {what} failed with HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 425, 429) or status >= 500:
        raise TransientError(message, retry_after=retry_after_seconds(response.headers))
    raise PermanentError(message)


def _short_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("errorMessage", "message", "error"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str):
                return value[:300]
        errors = body.get("errors")
        if isinstance(errors, dict):
            return "; ".join(f"{k}: {v}" for k, v in errors.items())[:300]
    return ""


class OutcomeUnknown(TransientError):
    """The request was sent but no answer came (a read or write timeout, the connection lost
    mid-exchange): the provider may still act on it. A create that ends so has an unknown outcome."""


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
"""Transport failures before the request left: the provider cannot have seen it."""


def transport_error(exc: httpx.HTTPError, provider: str, what: str) -> TransientError:
    """A transport failure as the retry it calls for; :class:`OutcomeUnknown` unless the request
    never left."""
    error = TransientError if isinstance(exc, _NOT_SENT) else OutcomeUnknown
    return error(f"{provider} {what} failed: {type(exc).__name__}")
