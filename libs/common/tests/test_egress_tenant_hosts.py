"""Egress follows a tenant's configured provider hosts (issue #15, part 3): inside
``tenant_hosts(base_url)`` that origin is allowed without an entry, by a stricter address rule
(public, or in a CIDR entry; link-local never; plain http only inside a CIDR entry)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from voiceticket_common.http import AllowListTransport, EgressDenied, EgressPolicy, HostRule, tenant_hosts


class Server:
    """A tiny HTTP/1.1 server on 127.0.0.1 counting the requests that reached it."""

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    record = Server()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        record.requests += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(answer, "127.0.0.1", 0)
    record.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield record


def stub_dns(answers: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        return answers[host]

    return resolve


def client(entries: Sequence[str], **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AllowListTransport(entries, "openai", **kwargs))  # type: ignore[arg-type]


async def test_the_configured_host_is_allowed_for_the_block_only(server: Server) -> None:
    base = f"http://stt.tenant.test:{server.port}/v1"
    dns = stub_dns({"stt.tenant.test": ["127.0.0.1"]})
    async with client(["127.0.0.0/8"], resolver=dns) as http:  # a CIDR entry, no host entry
        with tenant_hosts(base):
            assert (await http.get(f"{base}/models")).text == "ok"
            with pytest.raises(EgressDenied, match="not in the egress allow-list"):
                await http.get(f"http://llm.tenant.test:{server.port}/v1/models")  # another host
            with pytest.raises(EgressDenied, match="not in the egress allow-list"):
                await http.get(f"http://stt.tenant.test:{server.port + 1}/v1/models")  # another port
        with pytest.raises(EgressDenied, match="not in the egress allow-list"):
            await http.get(f"{base}/models")  # outside the block: nothing configured
    assert server.requests == 1


async def test_another_task_does_not_inherit_a_tenants_hosts(server: Server) -> None:
    base = f"http://stt.tenant.test:{server.port}/v1"
    dns = stub_dns({"stt.tenant.test": ["127.0.0.1"]})
    async with client(["127.0.0.0/8"], resolver=dns) as http:

        async def tenant_a() -> int:
            with tenant_hosts(base):
                await asyncio.sleep(0.01)
                return (await http.get(f"{base}/models")).status_code

        async def tenant_b() -> str:
            await asyncio.sleep(0)
            try:
                await http.get(f"{base}/models")
            except EgressDenied as exc:
                return str(exc)
            return "allowed"

        a, b = await asyncio.gather(tenant_a(), tenant_b())
    assert a == 200 and "not in the egress allow-list" in b


async def test_the_operator_can_turn_tenant_hosts_off(server: Server) -> None:
    base = f"http://stt.tenant.test:{server.port}/v1"
    dns = stub_dns({"stt.tenant.test": ["127.0.0.1"]})
    async with client(["127.0.0.0/8"], resolver=dns, allow_tenant_hosts=False) as http:
        with tenant_hosts(base), pytest.raises(EgressDenied, match="not in the egress allow-list"):
            await http.get(f"{base}/models")
    assert server.requests == 0


async def test_a_tenant_host_never_reaches_the_metadata_address() -> None:
    dns = stub_dns(
        {"meta.tenant.test": ["169.254.169.254"], "mapped.tenant.test": ["::ffff:169.254.169.254"]}
    )
    # even where an entry's network covers it: a tenant host never gets link-local
    async with client(["0.0.0.0/0", "::/0"], resolver=dns) as http:
        for base in (
            "https://meta.tenant.test/v1",
            "https://mapped.tenant.test/v1",
            "http://169.254.169.254/v1",
        ):
            with tenant_hosts(base), pytest.raises(EgressDenied, match="link-local"):
                await http.get(f"{base}/models")


async def test_a_tenant_host_gets_no_private_or_loopback_address_without_a_cidr_entry(server: Server) -> None:
    dns = stub_dns({"db.corp.test": ["10.0.0.5"]})
    async with client([], resolver=dns) as http:
        with tenant_hosts("https://db.corp.test/v1"), pytest.raises(EgressDenied, match="private"):
            await http.get("https://db.corp.test/v1/models")
        # an IP address configured by a tenant does not admit itself (an entry naming it would)
        base = f"http://127.0.0.1:{server.port}/v1"
        with tenant_hosts(base), pytest.raises(EgressDenied, match="loopback"):
            await http.get(f"{base}/models")
    assert server.requests == 0


def test_the_tenant_address_rule() -> None:
    policy = EgressPolicy.parse(["10.0.0.0/8", "api.openai.com"])
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.1.2.3")
    policy.check_address("stt.example.com", public, "openai", "https")
    policy.check_address("whisper.ml.svc", private, "openai", "http")  # inside the operator's network
    with pytest.raises(EgressDenied, match="use https"):
        policy.check_address("stt.example.com", public, "openai", "http")
    with pytest.raises(EgressDenied, match="private"):
        EgressPolicy.parse([]).check_address("whisper.ml.svc", private, "openai", "https")


def test_an_entry_lends_its_address_rule_only_to_its_own_port_and_scheme() -> None:
    policy = EgressPolicy.parse(["api.openai.com"])  # https, port 443
    https = (HostRule("https", "api.openai.com", 443),)
    assert policy.tenant_scheme("api.openai.com", 443, ()) is None
    assert policy.tenant_scheme("api.openai.com", 443, https) is None
    assert policy.tenant_scheme("api.openai.com", 80, (HostRule("http", "api.openai.com", 80),)) == "http"
    assert (
        policy.tenant_scheme("stt.example.com", 443, (HostRule("https", "stt.example.com", 443),)) == "https"
    )
    assert policy.tenant_scheme("stt.example.com", 443, ()) == "http"  # nothing visible: the strictest


def test_a_malformed_or_credentialed_base_url_admits_nothing() -> None:
    policy = EgressPolicy.parse([])
    for base in ("ftp://stt.example.com/", "https://user:pw@stt.example.com/", "not a url"):
        with tenant_hosts(base), pytest.raises(EgressDenied):
            policy.check_url(httpx.URL("https://stt.example.com/v1/models"), "openai")
