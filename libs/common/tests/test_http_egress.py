"""The egress guard: scheme, user-info, host, port and the resolved address (issue #11, point 8).

Every refusal is an ``EgressDenied`` whose message names the rule; the allowed set-ups (the
stand-ins on loopback, a name pinned to the address it was checked at, https with SNI) work.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voiceticket_common.bus import PermanentError
from voiceticket_common.http import AllowListTransport, EgressDenied, EgressPolicy, provider_client

LOOPBACK = ["127.0.0.0/8", "::1/128"]


@dataclass
class Server:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records what reached it."""

    port: int
    heads: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


async def _serve(server_ssl: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    record = Server(0)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        record.heads.append(head.decode("latin-1"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    if server_ssl is not None:

        def sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            record.sni.append(name)

        server_ssl.sni_callback = sni  # type: ignore[assignment]
    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ssl)
    record.port = server.sockets[0].getsockname()[1]
    async with server:
        yield record


@pytest.fixture
async def plain() -> AsyncIterator[Server]:
    async for server in _serve():
        yield server


@dataclass
class Tls:
    server: Server
    client_context: ssl.SSLContext


def _certificates(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a leaf certificate for ``name`` signed by it."""

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egress test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp / "ca.pem", tmp / "leaf.pem", tmp / "leaf.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
async def tls(tmp_path: Path) -> AsyncIterator[Tls]:
    ca, cert, key = _certificates(tmp_path, "jira.test")
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ssl.load_cert_chain(cert, key)
    async for server in _serve(server_ssl):
        yield Tls(server, ssl.create_default_context(cafile=str(ca)))


def stub_dns(answers: dict[str, Sequence[str]], calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise OSError(f"stub DNS has no answer for {host}")
        return answers[host]

    return resolve


def client(entries: Sequence[str], **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AllowListTransport(entries, "test", **kwargs))  # type: ignore[arg-type]


# --- refusals that today's host-only allow-list let through -------------------------------------


async def test_a_url_with_user_info_is_refused_and_the_secret_not_repeated(plain: Server) -> None:
    async with client([f"http://127.0.0.1:{plain.port}"]) as http:
        assert (await http.get(f"http://127.0.0.1:{plain.port}/")).status_code == 200
        with pytest.raises(EgressDenied, match="user-info") as refused:
            await http.get(f"http://api.twilio.com@127.0.0.1:{plain.port}/")
        with pytest.raises(EgressDenied, match="user-info") as with_password:
            await http.get(f"http://api.twilio.com:s3cret@127.0.0.1:{plain.port}/")
    assert isinstance(refused.value, PermanentError)
    assert "s3cret" not in str(with_password.value) and "api.twilio.com" not in str(with_password.value)
    assert len(plain.heads) == 1  # only the allowed request reached the server


async def test_a_name_resolving_to_the_metadata_address_is_refused() -> None:
    dns = stub_dns(
        {
            "metadata.tenant.test": ["169.254.169.254"],
            "v6.tenant.test": ["fe80::a9fe:a9fe"],
            "mapped.tenant.test": ["::ffff:169.254.169.254"],
            "mixed.tenant.test": ["93.184.216.34", "169.254.169.254"],
        }
    )
    async with client(["*.tenant.test"], resolver=dns) as http:
        for host in ("metadata", "v6", "mapped", "mixed"):
            with pytest.raises(EgressDenied, match="link-local"):
                await http.get(f"https://{host}.tenant.test/latest/meta-data/")
        # the address itself, not listed: refused by the host rule before any connection
        with pytest.raises(EgressDenied, match="not in the egress allow-list"):
            await http.get("https://169.254.169.254/latest/meta-data/")


async def test_a_name_resolving_to_loopback_is_refused_unless_loopback_is_allowed(plain: Server) -> None:
    url = f"http://localhost:{plain.port}/"  # the system resolver: localhost is 127.0.0.1 / ::1
    async with client([f"http://localhost:{plain.port}"]) as http:
        with pytest.raises(EgressDenied, match="loopback"):
            await http.get(url)
    assert plain.heads == []
    async with client([f"http://localhost:{plain.port}", *LOOPBACK]) as http:
        assert (await http.get(url)).text == "ok"
    assert plain.heads[0].lower().count(f"host: localhost:{plain.port}") == 1


async def test_private_networks_are_refused_the_same_way() -> None:
    dns = stub_dns({"db.corp.test": ["10.0.0.5"], "ula.corp.test": ["fd00::5"]})
    async with client(["*.corp.test"], resolver=dns) as http:
        for host in ("db", "ula"):
            with pytest.raises(EgressDenied, match="private"):
                await http.get(f"https://{host}.corp.test/")


async def test_plain_http_to_an_https_only_host_is_refused(tls: Tls) -> None:
    dns = stub_dns({"jira.test": ["127.0.0.1"]})
    entries = [f"jira.test:{tls.server.port}", *LOOPBACK]
    async with client(entries, resolver=dns, verify=tls.client_context) as http:
        with pytest.raises(
            EgressDenied, match=r"scheme 'http' is not allowed for host 'jira.test' \(https only\)"
        ):
            await http.get(f"http://jira.test:{tls.server.port}/rest")
        assert (await http.get(f"https://jira.test:{tls.server.port}/rest")).text == "ok"
        with pytest.raises(EgressDenied, match="scheme 'ftp'"):
            await http.get(f"ftp://jira.test:{tls.server.port}/")


async def test_a_port_other_than_the_schemes_default_is_refused(plain: Server) -> None:
    async with client(["http://127.0.0.1", "api.twilio.com"]) as http:
        with pytest.raises(EgressDenied, match=f"port {plain.port} is not allowed for host '127.0.0.1'"):
            await http.get(f"http://127.0.0.1:{plain.port}/")
        with pytest.raises(EgressDenied, match="port 8443 is not allowed for host 'api.twilio.com'"):
            await http.get("https://api.twilio.com:8443/2010-04-01/Accounts")
    assert plain.heads == []
    async with client([f"http://127.0.0.1:{plain.port}"]) as http:
        assert (await http.get(f"http://127.0.0.1:{plain.port}/")).status_code == 200


# --- what must keep working ----------------------------------------------------------------------


async def test_the_stand_in_setup_reaches_loopback_on_any_port(plain: Server) -> None:
    """What the tests, the embedded runtime and the devstack configure: ``http://127.0.0.1:*``."""

    async with provider_client("twilio", ["http://127.0.0.1:*"]) as http:
        response = await http.post(f"http://127.0.0.1:{plain.port}/2010-04-01/Accounts/AC1/Messages.json")
    assert response.text == "ok"
    assert plain.heads[0].startswith("POST /2010-04-01/Accounts/AC1/Messages.json HTTP/1.1")


async def test_the_connection_goes_to_the_address_that_was_checked(plain: Server) -> None:
    """DNS rebinding: the name is resolved once per connection, checked, and that address dialled
    (``rebind.test`` resolves nowhere else, so only the checked address can have answered)."""

    calls: list[str] = []
    dns = stub_dns({"rebind.test": ["127.0.0.1"]}, calls)
    async with client([f"http://rebind.test:{plain.port}", "127.0.0.1/32"], resolver=dns) as http:
        assert (await http.get(f"http://rebind.test:{plain.port}/x")).text == "ok"
    assert calls == ["rebind.test"]
    assert f"host: rebind.test:{plain.port}" in plain.heads[0].lower()


async def test_https_to_a_pinned_address_keeps_sni_host_and_certificate_checks(
    tls: Tls, tmp_path: Path
) -> None:
    dns = stub_dns({"jira.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    entries = ["jira.test:*", "other.test:*", *LOOPBACK]
    async with client(entries, resolver=dns, verify=tls.client_context) as http:
        assert (await http.get(f"https://jira.test:{tls.server.port}/rest/api/3/myself")).text == "ok"
        # same address, another name: the certificate is checked for the name, not the address
        with pytest.raises(httpx.ConnectError):
            await http.get(f"https://other.test:{tls.server.port}/")
    assert tls.server.sni[0] == "jira.test"
    assert f"host: jira.test:{tls.server.port}" in tls.server.heads[0].lower()


async def test_the_default_allow_list_still_admits_the_providers() -> None:
    policy = EgressPolicy.parse(["api.twilio.com", "api.openai.com", "*.atlassian.net", "api.atlassian.com"])
    for url in (
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
        "https://api.openai.com/v1/chat/completions",
        "https://acme.atlassian.net/rest/servicedeskapi/request",
        "https://api.atlassian.com/ex/jira/abc/rest/api/3/myself",
    ):
        policy.check_url(httpx.URL(url), "test")
    for url, rule in (
        ("https://atlassian.net/", "allow-list"),
        ("https://evilatlassian.net/", "allow-list"),
        ("http://acme.atlassian.net/", "https only"),
        ("https://acme.atlassian.net:8080/", "port 8080"),
    ):
        with pytest.raises(EgressDenied, match=rule):
            policy.check_url(httpx.URL(url), "test")


# --- the rules in isolation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
    ],
)
def test_non_public_addresses_are_refused_by_category(address: str, category: str) -> None:
    policy = EgressPolicy.parse(["*.example.com"])
    with pytest.raises(EgressDenied, match=f"resolves to {category} address"):
        policy.check_address("x.example.com", ipaddress.ip_address(address), "test")


def test_public_addresses_and_explicitly_allowed_networks_pass() -> None:
    policy = EgressPolicy.parse(["*.example.com", "http://127.0.0.1:*", "10.0.0.0/8", "::1/128"])
    for host, address in (
        ("x.example.com", "93.184.216.34"),
        ("x.example.com", "2606:2800:220:1::1"),
        ("x.example.com", "10.9.8.7"),
        ("x.example.com", "::1"),
        ("127.0.0.1", "127.0.0.1"),  # an entry naming the address itself
    ):
        policy.check_address(host, ipaddress.ip_address(address), "test")
    with pytest.raises(EgressDenied, match="loopback"):  # naming 127.0.0.1 is not all of 127/8
        policy.check_address("x.example.com", ipaddress.ip_address("127.0.0.2"), "test")


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "ftp://files.example.com",
        "https://a.example.com/path",
        "user@a.example.com",
        "::1",
        "a.example.com:0",
        "a.example.com:",
        "a.*.example.com",
        "10.0.0.0/33",
        "",
    ],
)
def test_malformed_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="egress entry"):
        EgressPolicy.parse([entry])


def test_entries_parse_to_scheme_host_and_port() -> None:
    policy = EgressPolicy.parse(["API.Twilio.com", "http://[::1]:*", "https://llm.corp:8443", "127.0.0.0/8"])
    assert [(r.scheme, r.host, r.port) for r in policy.rules] == [
        ("https", "api.twilio.com", 443),
        ("http", "::1", None),
        ("https", "llm.corp", 8443),
    ]
    assert policy.networks == (ipaddress.ip_network("127.0.0.0/8"),)
