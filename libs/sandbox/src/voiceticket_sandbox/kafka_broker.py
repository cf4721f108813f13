"""A real single-node Apache Kafka 4.x broker (KRaft) as a child process, for tests and local runs.

The broker is the one assembled from Maven Central by ``deploy/local/kafka`` (DESIGN.md section 8);
configuration comes from that directory's template through ``kafka.sh``, so ``kafka.sh start`` and
:class:`LocalKafkaBroker` run exactly the same broker::

    with LocalKafkaBroker() as broker:              # free loopback ports, temporary data dir
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)

Readiness is a real Kafka exchange (ApiVersions, then Metadata naming this broker and an active
controller) over a plain socket, so this module needs no Kafka client library.

Secured listeners (``secure=``, :class:`SecureListeners`): next to PLAINTEXT (inter-broker, and
the readiness probe) a ``SASL_SSL`` listener (SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN users, the
SCRAM credentials written at storage format) and an ``SSL`` listener requiring a client certificate
signed by the given CA; :func:`write_certificates` makes the PEM files (a CA, the broker's and a
client's certificates) for tests::

    pki = write_certificates(tmp_path)
    with LocalKafkaBroker(secure=SecureListeners(pki.broker, users={"svc": "pw"})) as broker:
        broker.sasl_ssl_bootstrap_servers   # 127.0.0.1:<port>, certificate for 127.0.0.1/localhost

No orphan ``java``: the broker runs in its own session (process group) and :meth:`stop` signals
the whole group; live brokers are stopped at interpreter exit (atexit); and when started from the
main thread the child also gets ``PR_SET_PDEATHSIG`` so it is terminated even if this Python
process is killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = [
    "BrokerTls",
    "CertificateFiles",
    "KafkaBrokerError",
    "LocalKafkaBroker",
    "SecureListeners",
    "find_repo_root",
    "write_certificates",
]

_KAFKA_SH = Path("deploy/local/kafka/kafka.sh")
_INSTALL_TIMEOUT = 900.0  # a cold ~/.m2 downloads ~45 jars


class KafkaBrokerError(RuntimeError):
    """The local broker could not be installed, started or reached."""


def find_repo_root(start: Path | None = None) -> Path:
    """The repository root: ``$VOICETICKET_ROOT``, else the nearest parent holding kafka.sh."""
    env = os.environ.get("VOICETICKET_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / _KAFKA_SH).is_file():
            raise KafkaBrokerError(f"VOICETICKET_ROOT={env} has no {_KAFKA_SH}")
        return root
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / _KAFKA_SH).is_file():
            return candidate
    raise KafkaBrokerError(f"no {_KAFKA_SH} above {here}; set VOICETICKET_ROOT")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Secured listeners
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BrokerTls:
    """The broker's TLS material, PEM files: its certificate (chain) and unencrypted private key,
    and the CA whose client certificates the SSL listener accepts."""

    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass(frozen=True)
class SecureListeners:
    """A SASL_SSL listener for ``users`` (name -> password; SCRAM-SHA-512, SCRAM-SHA-256 and
    PLAIN) and, with ``mutual_tls``, an SSL listener requiring a client certificate."""

    tls: BrokerTls
    users: Mapping[str, str] = field(default_factory=dict)
    mutual_tls: bool = True

    def properties(
        self, port: int, controller_port: int, sasl_ssl_port: int, ssl_port: int, keystore: Path
    ) -> str:
        """The broker properties overriding the template's listeners (``KAFKA_EXTRA_CONFIG``)."""
        listeners = {"PLAINTEXT": port, "SASL_SSL": sasl_ssl_port}
        if self.mutual_tls:
            listeners["SSL"] = ssl_port
        advertised = ",".join(f"{name}://127.0.0.1:{p}" for name, p in listeners.items())
        protocols = ",".join(f"{name}:{name}" for name in [*listeners, "CONTROLLER"]).replace(
            "CONTROLLER:CONTROLLER", "CONTROLLER:PLAINTEXT"
        )
        mechanisms = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        plain_users = "".join(f' user_{name}="{_jaas_quote(pw)}"' for name, pw in self.users.items())
        lines = [
            f"listeners={advertised},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={advertised}",
            f"listener.security.protocol.map={protocols}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.tls.ca_file}",
            "listener.name.ssl.ssl.client.auth=required",
            f"sasl.enabled.mechanisms={mechanisms}",
            f"listener.name.sasl_ssl.sasl.enabled.mechanisms={mechanisms}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
            f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}",
            "listener.name.sasl_ssl.plain.sasl.jaas.config="
            f"org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};",
        ]
        return "\n".join(lines) + "\n"

    def scram_credentials(self) -> str:
        """The ``--add-scram`` lines of the storage format (``KAFKA_SCRAM_FILE``)."""
        for name, password in self.users.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not re.fullmatch(r"[^\s,\[\]=\"\\]+", password):
                raise KafkaBrokerError(
                    f'SASL user {name!r}: names of letters, digits, _ and -; passwords without spaces or ,[]="\\'
                )
        return "".join(
            f"{mechanism}=[name={name},password={password}]\n"
            for name, password in self.users.items()
            for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256")
        )


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class CertificateFiles:
    """PEM files made by :func:`write_certificates`."""

    ca_file: Path
    broker: BrokerTls
    client_cert_file: Path
    client_key_file: Path
    encrypted_client_key_file: Path
    """The client key encrypted with ``key_password``."""
    key_password: str
    untrusted_ca_file: Path
    """A CA that signed nothing here: trusting only it, no broker certificate verifies."""


def write_certificates(directory: Path, *, key_password: str | None = None) -> CertificateFiles:
    """Write a throwaway CA, a broker certificate for 127.0.0.1 and localhost, a client
    certificate (and its key encrypted with ``key_password``, random unless given) and an
    unrelated CA into ``directory`` (needs the ``cryptography`` package)."""
    import datetime
    import ipaddress
    import secrets

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key_password = key_password or secrets.token_urlsafe(12)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def certificate(
        subject: str, own: rsa.RSAPrivateKey, issuer: x509.Certificate | None, signer: rsa.RSAPrivateKey
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer.subject if issuer else name(subject))
            .public_key(own.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(own.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        )
        if issuer is None:  # a CA
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    def write(filename: str, *parts: bytes) -> Path:
        path = directory / filename
        path.write_bytes(b"".join(parts))
        path.chmod(0o600)
        return path

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def private(k: rsa.RSAPrivateKey, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    ca_key, other_key, broker_key, client_key = key(), key(), key(), key()
    ca = certificate("voiceticket test CA", ca_key, None, ca_key)
    other = certificate("voiceticket untrusted CA", other_key, None, other_key)
    broker = certificate("localhost", broker_key, ca, ca_key)
    client = certificate("voiceticket-client", client_key, ca, ca_key)
    ca_file = write("ca.pem", pem(ca))
    return CertificateFiles(
        ca_file=ca_file,
        broker=BrokerTls(
            cert_file=write("broker.pem", pem(broker), pem(ca)),
            key_file=write("broker.key", private(broker_key)),
            ca_file=ca_file,
        ),
        client_cert_file=write("client.pem", pem(client)),
        client_key_file=write("client.key", private(client_key)),
        encrypted_client_key_file=write("client-encrypted.key", private(client_key, key_password)),
        key_password=key_password,
        untrusted_ca_file=write("untrusted-ca.pem", pem(other)),
    )


# --------------------------------------------------------------------------------------------
# Minimal Kafka wire protocol: enough for ApiVersions and Metadata.
# --------------------------------------------------------------------------------------------
_API_METADATA = 3
_API_VERSIONS = 18


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def string(self, compact: bool) -> str | None:
        n = self.uvarint() - 1 if compact else self.take(">h")
        if n < 0:
            return None
        value = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return value

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def _call(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes, flexible: bool) -> _Reader:
    client_id = b"voiceticket-readiness"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    if flexible:
        header += b"\x00"  # request header v2: empty tagged fields
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    reader = _Reader(_recv_exact(sock, size))
    if reader.take(">i") != corr:
        raise ConnectionError("correlation id mismatch")
    if flexible and api_key != _API_VERSIONS:  # ApiVersions responses always use header v0
        reader.skip_tags()
    return reader


def _probe(host: str, port: int, node_id: int, timeout: float = 3.0) -> None:
    """Raise unless the broker answers ApiVersions and a Metadata request listing itself
    (registered and unfenced) and an active controller."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        r = _call(sock, _API_VERSIONS, 0, 1, b"", flexible=False)
        error = r.take(">h")
        ranges = {}
        for _ in range(r.take(">i")):
            key, lo, hi = r.take(">h"), r.take(">h"), r.take(">h")
            ranges[key] = (lo, hi)
        if error:
            raise ConnectionError(f"ApiVersions error {error}")
        lo, hi = ranges.get(_API_METADATA, (0, -1))
        if hi < max(lo, 1):
            raise ConnectionError(f"no usable Metadata version in {lo}..{hi}")
        if lo <= 8:  # classic encoding
            version, flexible = min(hi, 8), False
            body = struct.pack(">i", 0)  # topics: empty array (v1+: none; null would be all)
            if version >= 4:
                body += b"\x00"  # allow_auto_topic_creation
            if version >= 8:
                body += b"\x00\x00"  # include cluster / topic authorized operations
        else:  # flexible encoding only (v9+)
            version, flexible = min(hi, 12), True
            body = b"\x01"  # topics: empty compact array
            body += b"\x00"  # allow_auto_topic_creation
            if version <= 10:
                body += b"\x00"  # include_cluster_authorized_operations
            body += b"\x00\x00"  # include_topic_authorized_operations, tagged fields
        r = _call(sock, _API_METADATA, version, 2, body, flexible)
        if version >= 3:
            r.take(">i")  # throttle_time_ms
        count = r.uvarint() - 1 if flexible else r.take(">i")
        brokers = []
        for _ in range(max(count, 0)):
            brokers.append(r.take(">i"))
            r.string(flexible)  # host
            r.take(">i")  # port
            r.string(flexible)  # rack
            if flexible:
                r.skip_tags()
        if version >= 2:
            r.string(flexible)  # cluster_id
        controller = r.take(">i")
        if node_id not in brokers or controller < 0:
            raise ConnectionError(f"not ready: brokers={brokers} controller={controller}")


# --------------------------------------------------------------------------------------------
# Orphan protection
# --------------------------------------------------------------------------------------------
_LIVE: set[LocalKafkaBroker] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        brokers = list(_LIVE)
    for broker in brokers:
        with contextlib.suppress(Exception):
            broker.stop(timeout=10)


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn making the kernel SIGTERM the child when the spawning thread dies.
    Only offered for the main thread: PDEATHSIG fires on *thread* exit, so a child forked
    from a short-lived worker thread would be killed when that thread ends."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved in the parent, not after fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent already gone between fork and prctl
            os._exit(1)

    return preexec


# --------------------------------------------------------------------------------------------
class LocalKafkaBroker:
    """A throwaway single-node KRaft Kafka broker on 127.0.0.1.

    ``port``/``controller_port`` of ``None`` pick free loopback ports; ``data_dir`` of ``None``
    uses a temporary directory that :meth:`stop` deletes (a given ``data_dir`` is kept, and a
    broker restarted on it keeps its topics). ``heap`` overrides ``KAFKA_HEAP``. ``secure`` adds
    the SASL_SSL and SSL listeners (on free ports) to the PLAINTEXT one.
    """

    NODE_ID = 1  # node.id in deploy/local/kafka/server.properties.template

    def __init__(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: Path | None = None,
        *,
        heap: str | None = None,
        root: Path | None = None,
        secure: SecureListeners | None = None,
    ) -> None:
        self._secure = secure
        self.sasl_ssl_port: int | None = None
        self.ssl_port: int | None = None
        self._fixed_ports = port is not None and controller_port is not None
        self._want_port, self._want_controller_port = port, controller_port
        self.port: int | None = port
        self.controller_port: int | None = controller_port
        self._given_data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.data_dir: Path | None = self._given_data_dir
        self._heap = heap
        self._root = root
        self._proc: subprocess.Popen[bytes] | None = None
        self._owns_data_dir = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise KafkaBrokerError("broker not started")
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        if self._secure is None or self.sasl_ssl_port is None:
            raise KafkaBrokerError("broker not started with secure listeners")
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap_servers(self) -> str:
        if self._secure is None or not self._secure.mutual_tls or self.ssl_port is None:
            raise KafkaBrokerError("broker not started with a mutual TLS listener")
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_file(self) -> Path | None:
        return self.data_dir / "logs" / "server.log" if self.data_dir else None

    @property
    def kafka_sh(self) -> Path:
        return (self._root or find_repo_root()) / _KAFKA_SH

    # ------------------------------------------------------------------ lifecycle
    def install(self) -> None:
        """Fetch the broker jars if needed (``kafka.sh install``; instant when done)."""
        try:
            subprocess.run(
                [str(self.kafka_sh), "install"],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_INSTALL_TIMEOUT,
            )
        except subprocess.CalledProcessError as exc:
            raise KafkaBrokerError(
                f"kafka.sh install failed:\n{exc.stderr.decode(errors='replace')}"
            ) from exc

    def start(self, timeout: float = 90) -> LocalKafkaBroker:
        """Install if needed, launch the broker and return once it serves Metadata."""
        with self._lock:
            if self.is_running:
                return self
            self.install()
            attempts = 1 if self._fixed_ports else 3  # a picked free port can be taken meanwhile
            deadline = time.monotonic() + timeout
            for attempt in range(1, attempts + 1):
                self._launch()
                try:
                    self._wait_ready(deadline)
                except KafkaBrokerError as exc:
                    port_race = "Address already in use" in str(exc)
                    self._terminate()
                    if attempt < attempts and port_race and time.monotonic() < deadline:
                        continue
                    self._cleanup_data_dir()
                    raise
                with _LIVE_LOCK:
                    _LIVE.add(self)
                return self
            raise AssertionError("unreachable")

    def stop(self, timeout: float = 30) -> None:
        """Stop the broker (SIGTERM to its process group, SIGKILL after ``timeout``) and remove
        the temporary data dir if this object created it. Safe to call repeatedly."""
        with self._lock:
            self._terminate(timeout)
            self._cleanup_data_dir()
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def __enter__(self) -> LocalKafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"<LocalKafkaBroker {self.port and self.bootstrap_servers} {state}>"

    # ------------------------------------------------------------------ internals
    def _launch(self) -> None:
        self.port = self._want_port or _free_port()
        self.controller_port = self._want_controller_port or _free_port()
        while self.controller_port == self.port:
            self.controller_port = _free_port()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="voiceticket-kafka-"))
            self._owns_data_dir = True
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_file = logs / "server.log"  # what the log_file property names, data_dir now being set
        self._log_offset = log_file.stat().st_size if log_file.exists() else 0

        env = dict(os.environ)
        env.update(
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_DATA_DIR=str(self.data_dir),
        )
        if self._heap is not None:
            env["KAFKA_HEAP"] = self._heap
        if self._secure is not None:
            env.update(self._secure_files())
        with open(logs / "console.log", "ab") as console:
            # `kafka.sh run` renders the config, formats storage, then execs java: the child's
            # pid is the broker's pid, and its new session is the group stop() signals.
            self._proc = subprocess.Popen(
                [str(self.kafka_sh), "run"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_pdeathsig_preexec(),
            )

    def _secure_files(self) -> dict[str, str]:
        """Pick the secured listeners' ports and write their configuration and credentials into
        the data dir: the ``KAFKA_EXTRA_CONFIG`` and ``KAFKA_SCRAM_FILE`` of kafka.sh."""
        assert self._secure is not None and self.data_dir is not None
        assert self.port is not None and self.controller_port is not None
        taken = {self.port, self.controller_port}
        ports: list[int] = []
        while len(ports) < 2:
            candidate = _free_port()
            if candidate not in taken:
                taken.add(candidate)
                ports.append(candidate)
        self.sasl_ssl_port, self.ssl_port = ports
        tls = self._secure.tls
        secure_dir = self.data_dir / "secure"
        secure_dir.mkdir(mode=0o700, exist_ok=True)
        keystore = secure_dir / "keystore.pem"  # Kafka's PEM key store: the key, then the chain
        keystore.write_bytes(tls.key_file.read_bytes() + b"\n" + tls.cert_file.read_bytes())
        extra, scram = secure_dir / "listeners.properties", secure_dir / "scram.txt"
        extra.write_text(
            self._secure.properties(self.port, self.controller_port, ports[0], ports[1], keystore)
        )
        scram.write_text(self._secure.scram_credentials())
        for path in (keystore, extra, scram):
            path.chmod(0o600)
        return {"KAFKA_EXTRA_CONFIG": str(extra), "KAFKA_SCRAM_FILE": str(scram)}

    def _secure_ports_open(self) -> bool:
        ports = [self.sasl_ssl_port]
        if self._secure is not None and self._secure.mutual_tls:
            ports.append(self.ssl_port)
        for port in filter(None, ports):
            with socket.socket() as sock:
                sock.settimeout(1)
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    return False
        return True

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None and self.port is not None
        last_error: Exception | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise KafkaBrokerError(f"broker exited with {code} during start-up\n{self._log_tail()}")
            try:
                _probe("127.0.0.1", self.port, self.NODE_ID)
                if self._secure is None or self._secure_ports_open():
                    return
                last_error = ConnectionError("secured listeners not accepting connections yet")
            except (OSError, struct.error, IndexError, UnicodeDecodeError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise KafkaBrokerError(
                    f"broker on {self.bootstrap_servers} not ready in time "
                    f"(last probe: {last_error!r})\n{self._log_tail()}"
                )
            time.sleep(0.2)

    def _log_tail(self, lines: int = 40) -> str:
        out = []
        assert self.data_dir is not None
        logs = self.data_dir / "logs"
        for path, offset in (
            (logs / "console.log", 0),
            (logs / "server.log", getattr(self, "_log_offset", 0)),  # log_file
        ):
            with contextlib.suppress(OSError):
                with open(path, "rb") as f:
                    f.seek(offset)
                    text = f.read().decode(errors="replace").splitlines()[-lines:]
                if text:
                    out.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(out)

    def _terminate(self, timeout: float = 30) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                pass
        # Still running (or a zombie not yet reaped, so the group id cannot have been reused):
        # kill everything in the broker's process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def _cleanup_data_dir(self) -> None:
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
            self._owns_data_dir = False
