"""The ``voiceticket`` command.

Exit codes: 0 success; 1 the operation failed (a call did not become a ticket, a service failed);
2 wrong usage; 3 a server the command needs could not be reached or refused the credentials.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import re
import signal
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from .samples import sample_calls

app = typer.Typer(
    help="Voice to Ticket: support calls on Twilio become Jira Service Management requests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tenants_app = typer.Typer(
    help="Manage tenants (a Jira site, its credentials and defaults).", no_args_is_help=True
)
lines_app = typer.Typer(
    help="Manage lines (a Twilio number and how its calls become requests).", no_args_is_help=True
)
dlq_app = typer.Typer(help="Inspect messages a service gave up on.", no_args_is_help=True)
audit_app = typer.Typer(
    help="Read config-api's audit log (who changed what, and when).", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(lines_app, name="lines")
app.add_typer(dlq_app, name="dead-letters")
privacy_app = typer.Typer(
    help="A caller's data: export what we hold for a number, or erase it.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
app.add_typer(privacy_app, name="privacy")

SERVICES = ("ingress", "transcriber", "analyzer", "jira-writer", "notifier", "config-api")
DEFAULT_DATA_DIR = Path(os.environ.get("VOICETICKET_DATA_DIR", ".voiceticket"))

DataDir = Annotated[Path, typer.Option(help="Where the embedded runtime keeps its databases and secrets.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def require_sandbox(command: str) -> None:
    """Exit 2 with a clear message when the ``sandbox`` extra (not in the runtime image) is missing."""

    if importlib.util.find_spec("voiceticket_sandbox") is None:
        raise fail(
            f"`voiceticket {command}` needs the provider sandboxes, which this installation leaves out: "
            "install voiceticket[sandbox] for the demo and simulate-call "
            "(pip install 'voiceticket[sandbox]'; in a checkout, `uv sync` or `make bootstrap`)",
            2,
        )


@app.command()
def run(
    service: Annotated[
        str | None,
        typer.Option(
            help=f"Run one service as its own process ({', '.join(SERVICES)}), configured by environment."
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    host: Annotated[
        str, typer.Option(help="Interface ingress listens on (Twilio's webhook target; not config-api's).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Ingress port (Twilio's webhook target).")] = 8080,
    config_api_host: Annotated[
        str,
        typer.Option(
            envvar="CONFIG_API_HOST",
            help="Interface config-api (the admin API) listens on; keep it on loopback unless "
            "something on another machine must manage tenants and lines.",
        ),
    ] = "127.0.0.1",
    config_api_port: Annotated[int, typer.Option(help="config-api port.")] = 8085,
    public_base_url: Annotated[
        str | None,
        typer.Option(help="The URL Twilio calls (signatures depend on it); default http://HOST:PORT."),
    ] = None,
    seed: Annotated[
        Path | None, typer.Option(help="JSON file of tenants and lines to load at start.")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra egress entry (repeatable): a host (https, port 443), `http://host:port`, "
            "`host:*`, `*.domain` or a CIDR such as 127.0.0.0/8 (docs/deployment.md, egress)."
        ),
    ] = None,
    twilio_api_base_url: Annotated[
        str, typer.Option(help="Twilio REST API base URL (a sandbox's, for trials).")
    ] = "https://api.twilio.com",
    purge_interval: Annotated[
        float,
        typer.Option(
            envvar="VOICETICKET_PURGE_INTERVAL_SECONDS",
            min=1.0,
            help="Seconds between retention purges (the first runs a minute after start).",
        ),
    ] = 3600.0,
) -> None:
    """Run all six services in this process over the embedded bus (the default), or one service."""

    if service is not None:
        if service not in SERVICES:
            raise fail(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}", 2)
        module = importlib.import_module(f"voiceticket_{service.replace('-', '_')}.__main__")
        module.main()
        return
    from voiceticket_common.logging import setup_logging
    from voiceticket_common.tracing import setup_tracing

    from .embedded import DEFAULT_EGRESS, EmbeddedOptions, EmbeddedRuntime

    setup_logging("voiceticket")
    setup_tracing("voiceticket")
    options = EmbeddedOptions(
        data_dir=data_dir,
        host=host,
        ingress_port=port,
        config_api_host=config_api_host,
        config_api_port=config_api_port,
        public_base_url=public_base_url,
        egress_allowed_hosts=[*DEFAULT_EGRESS, *(allow_host or [])],
        seed_file=seed,
        twilio_api_base_url=twilio_api_base_url,
        purge_interval_seconds=purge_interval,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with EmbeddedRuntime(options) as runtime:
            typer.echo(f"ingress (Twilio webhooks): {runtime.ingress_url}/twilio/voice", err=True)
            typer.echo(
                f"config-api: {runtime.config_api_url}  (admin token in {data_dir / 'secrets.json'})",
                err=True,
            )
            await stop.wait()

    from pydantic import ValidationError

    try:
        asyncio.run(main())
    except OSError as exc:
        raise fail(f"could not start: {exc}") from None
    except ValidationError as exc:  # a setting refused at start (e.g. VOICETICKET_ENVIRONMENT=prod)
        raise fail(f"refusing to start: {exc}", 2) from None


@app.command()
def samples() -> None:
    """List the bundled sample calls."""

    for call in sample_calls().values():
        typer.echo(f"{call.name:18} {call.language}  {call.duration_seconds:3d}s  {call.description}")


@app.command()
def demo(
    sample: Annotated[
        str, typer.Option(help="Which bundled call to play (see `voiceticket samples`).")
    ] = "vpn-outage",
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo's databases here (default: a temporary directory).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    distributed: Annotated[
        bool,
        typer.Option(help="Run the services as separate processes on a local Kafka broker (needs Java)."),
    ] = False,
) -> None:
    """Play a bundled sample call through the sandboxes and print the resulting request and SMS."""

    require_sandbox("demo")
    from .demo import DemoFailed, run_demo, run_distributed_demo

    calls = sample_calls()
    if sample not in calls:
        raise fail(f"unknown sample {sample!r}; choose one of {', '.join(calls)}", 2)
    call = calls[sample]
    progress = (lambda _: None) if as_json else (lambda line: typer.echo(f"  {line}", err=True))
    if not as_json:
        typer.echo(
            f"Playing sample call '{call.name}' ({call.description}) from a simulated caller…", err=True
        )
    with tempfile.TemporaryDirectory(prefix="voiceticket-demo-") as tmp:
        try:
            workdir = data_dir or Path(tmp)
            if distributed:
                result = run_distributed_demo(call, workdir, progress)
            else:
                result = asyncio.run(run_demo(call, workdir, progress))
        except DemoFailed as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"call_sid": result.call_sid, "issue": result.issue, "sms": result.sms,
                               "timeline": result.timeline}, indent=2))  # fmt: skip
        return
    print_result(result)


def print_result(result: Any) -> None:
    issue = result.issue
    fields = issue["requestFieldValues"]
    prop = issue["properties"].get("voiceticket.call", {})
    echo = typer.echo
    echo("")
    typer.secho(f"JSM request {issue['key']} created", bold=True)
    echo(f"  service desk {issue['serviceDeskId']}, request type {issue['requestTypeId']}")
    echo(f"  summary:     {fields['summary']}")
    echo("  description:")
    for line in fields.get("description", "").splitlines():
        echo(f"    {line}")
    echo(f"  issue property voiceticket.call: callSid={prop.get('callSid')} "
         f"recordingSid={prop.get('recordingSid')} duration={prop.get('durationSeconds')}s")  # fmt: skip
    for comment in issue["comments"]:
        echo(f"  {'public' if comment['public'] else 'internal'} comment:")
        for line in comment["body"].splitlines():
            echo(f"    {line}")
    for sms in result.sms:
        echo(f"SMS to the caller: {sms.get('body')}")
    echo("Timeline:")
    for step, offset in result.timeline:
        echo(f"  +{offset * 1000:7.0f} ms  {step}")
    if result.invalid_requests:
        typer.secho(f"{len(result.invalid_requests)} provider request(s) broke the official specs", fg="red")


@app.command("simulate-call")
def simulate_call(
    audio: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="WAV file the caller 'speaks'.")],
    from_number: Annotated[str, typer.Option("--from", help="Caller number (E.164).")],
    to_number: Annotated[str, typer.Option("--to", help="Support line number (E.164).")],
    transcript: Annotated[str, typer.Option(help="What the OpenAI sandbox will transcribe the audio as.")],
    ingress_url: Annotated[str, typer.Option(envvar="VOICETICKET_INGRESS_URL")] = "http://127.0.0.1:8080",
    twilio_sandbox_url: Annotated[
        str, typer.Option(envvar="VOICETICKET_TWILIO_SANDBOX_URL")
    ] = "http://127.0.0.1:9001",
    account_sid: Annotated[str, typer.Option(envvar="VOICETICKET_TWILIO_ACCOUNT_SID")] = "",
    auth_token: Annotated[
        str, typer.Option(envvar="VOICETICKET_TWILIO_AUTH_TOKEN", help="Signs the webhooks.")
    ] = "",
) -> None:
    """Play one call against any running ingress, signed as Twilio signs it."""

    require_sandbox("simulate-call")
    from voiceticket_sandbox.caller import CallerSimulator
    from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN

    simulator = CallerSimulator(
        ingress_url, account_sid or ACCOUNT_SID, auth_token or AUTH_TOKEN, twilio_sandbox_url
    )
    try:
        played = asyncio.run(simulator.play_call(from_number, to_number, audio.read_bytes(), transcript))
    except httpx.HTTPError as exc:
        raise fail(f"could not reach ingress or the Twilio sandbox: {type(exc).__name__}", 3) from None
    typer.echo(json.dumps({"call_sid": played.call_sid, "voice_status": played.voice_status,
                           "recording_status": played.recording_status}))  # fmt: skip
    if played.voice_status != 200 or (played.recording_status or 0) >= 400:
        raise typer.Exit(1)


# -- admin ------------------------------------------------------------------------------------

ConfigUrl = Annotated[str, typer.Option(envvar="VOICETICKET_CONFIG_API_URL", help="config-api base URL.")]
AdminToken = Annotated[
    str | None,
    typer.Option(envvar="VOICETICKET_ADMIN_TOKEN", help="Admin token (default: the embedded runtime's)."),
]


def _admin(config_api_url: str, admin_token: str | None, data_dir: Path) -> httpx.Client:
    token = admin_token
    if not token and (data_dir / "secrets.json").exists():
        token = json.loads((data_dir / "secrets.json").read_text())["admin_token"]
    if not token:
        raise fail("no admin token: pass --admin-token or VOICETICKET_ADMIN_TOKEN", 2)
    return httpx.Client(base_url=config_api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _call(
    client: httpx.Client, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
) -> Any:
    try:
        response = client.request(method, path, json=body, params=params)
    except httpx.HTTPError as exc:
        raise fail(f"config-api unreachable at {client.base_url}: {type(exc).__name__}", 3) from None
    if response.status_code in (401, 403):
        raise fail("config-api refused the admin token", 3)
    if response.status_code >= 400:
        raise fail(f"config-api answered {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def _print_call(
    config_api_url: str,
    admin_token: str | None,
    data_dir: Path,
    method: str,
    path: str,
    file: Path | None = None,
) -> None:
    """Send one request to config-api (the body read from the JSON ``file``) and print its answer."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        body = json.loads(file.read_text()) if file is not None else None
        typer.echo(json.dumps(_call(client, method, path, body), indent=2))


def _list_command(group: typer.Typer, path: str, doc: str) -> None:
    """Register ``group``'s ``list`` command: print what config-api has at ``path``."""

    @group.command("list", help=doc)
    def list_all(
        config_api_url: ConfigUrl = "http://127.0.0.1:8085",
        admin_token: AdminToken = None,
        data_dir: DataDir = DEFAULT_DATA_DIR,
    ) -> None:
        _print_call(config_api_url, admin_token, data_dir, "GET", path)


_list_command(tenants_app, "/v1/tenants", "List tenants (credentials shown masked).")


@tenants_app.command("create")
def tenants_create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Tenant as JSON.")],
    config_api_url: ConfigUrl = "http://127.0.0.1:8085",
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Create a tenant from a JSON file."""

    _print_call(config_api_url, admin_token, data_dir, "POST", "/v1/tenants", file)


@tenants_app.command("delete")
def tenants_delete(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config_api_url: ConfigUrl = "http://127.0.0.1:8085",
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Remove a tenant: its lines (their calls are then answered as an unknown line), its stored
    credentials, and the data keys of all its calls (whatever of it is still queued or in flight is
    dropped, unreadable). Prints the revocation steps left to do at Twilio, Atlassian and OpenAI."""

    if not yes:
        typer.confirm(
            f"Remove tenant {tenant_id!r} and everything it holds here? This cannot be undone", abort=True
        )
    with _admin(config_api_url, admin_token, data_dir) as client:
        report = _call(client, "DELETE", f"/v1/tenants/{tenant_id}")
    typer.echo(json.dumps(report, indent=2))
    typer.echo(
        f"tenant {tenant_id} removed: {report['lines_deleted']} line(s), {report['call_keys_destroyed']} call "
        "key(s) destroyed. Still to do at the providers:",
        err=True,
    )
    for step in report["revocation_steps"]:
        typer.echo(f"  - {step}", err=True)


_list_command(lines_app, "/v1/lines", "List lines.")


@lines_app.command("set")
def lines_set(
    number: Annotated[str, typer.Argument(help="The Twilio number, E.164.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Line settings as JSON.")],
    config_api_url: ConfigUrl = "http://127.0.0.1:8085",
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Create or replace a line."""

    _print_call(config_api_url, admin_token, data_dir, "PUT", f"/v1/lines/{number}", file)


_AGO = re.compile(r"^(\d{1,6})([mhd])$")


def _since(value: str) -> str:
    """``7d``, ``12h`` or ``30m`` ago as an ISO time; anything else goes to config-api as it is."""
    match = _AGO.match(value.strip())
    if not match:
        return value
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return (datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})).isoformat()


@audit_app.command("list")
def audit_list(
    since: Annotated[
        str | None,
        typer.Option(help="Only entries since: an ISO time (2025-06-01T00:00Z) or 30m, 12h, 7d ago."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor (an admin token's name, 'anonymous').")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (tenant.delete) or family (credential.*).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only this target: tenant:acme, master-key, or a line's number.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries (newest first).")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
    config_api_url: ConfigUrl = "http://127.0.0.1:8085",
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """List audit entries, newest first (credentials and numbers are never in them)."""

    filters = {"since": since and _since(since), "actor": actor, "action": action, "target": target}
    params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
    items: list[dict[str, Any]] = []
    with _admin(config_api_url, admin_token, data_dir) as client:
        while len(items) < limit:
            page = _call(client, "GET", "/v1/audit", params={**params, "limit": min(500, limit - len(items))})
            items.extend(page["items"])
            if page["next_before"] is None:
                break
            params["before"] = page["next_before"]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for e in items:
        details = json.dumps(e["details"], separators=(",", ":")) if e["details"] else ""
        typer.echo(
            f"{e['at']}  {e['actor']:12} {e['action']:18} {e['target'] or '-':28} "
            f"{e['outcome']} {e['status_code']}  {details}".rstrip()
        )
    typer.echo(f"{len(items)} audit entr{'y' if len(items) == 1 else 'ies'}", err=True)


Phone = Annotated[str, typer.Option("--phone", help="The caller's number, E.164 (+14155550123).")]
OnlyTenant = Annotated[str | None, typer.Option("--tenant", help="Only this tenant's calls.")]


@privacy_app.command("export")
def privacy_export(
    phone: Phone,
    tenant: OnlyTenant = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the export to this file (mode 0600) instead of stdout.")
    ] = None,
    config_api_url: ConfigUrl = "http://127.0.0.1:8085",
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Everything we hold for a caller's number, as JSON: their calls, each event and dead letter
    as stored (sealed fields opened), and the Jira requests and Twilio recordings that hold their
    data in the tenant's own systems. Recorded in the audit log (privacy.export)."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        export = _call(client, "POST", "/v1/privacy/exports", {"phone": phone, "tenant_id": tenant})
    text = json.dumps(export, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.touch(mode=0o600, exist_ok=True)
        out.chmod(0o600)
        out.write_text(text + "\n")
    calls = export["calls"]
    typer.echo(
        f"{len(calls)} call(s), {sum(len(c['records']) for c in calls)} record(s) "
        f"(event log: {export['event_log']}); {len(export['customer_systems']['jira_requests'])} Jira "
        f"request(s), {len(export['customer_systems']['twilio_recordings'])} Twilio recording(s)",
        err=True,
    )


@privacy_app.command("erase")
def privacy_erase(
    phone: Phone,
    tenant: OnlyTenant = None,
    delete_recordings: Annotated[
        bool, typer.Option(help="Also delete the calls' recordings at Twilio (the tenant's account).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config_api_url: ConfigUrl = "http://127.0.0.1:8085",
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Erase what we hold for a caller's number: destroys their calls' data keys (every sealed copy
    on the bus, in dead letters and ledgers becomes unreadable), deletes the embedded event log's
    rows, optionally deletes the recordings at Twilio, and lists what remains in the tenant's Jira
    and Twilio. Cannot be undone. Recorded in the audit log (privacy.erase)."""

    if not yes:
        typer.confirm("Erase this caller's data? This cannot be undone", abort=True)
    body = {"phone": phone, "tenant_id": tenant, "delete_recordings": delete_recordings}
    with _admin(config_api_url, admin_token, data_dir) as client:
        report = _call(client, "POST", "/v1/privacy/erasures", body)
    typer.echo(json.dumps(report, indent=2))
    typer.echo(
        f"erased {report['calls']} call(s) of {report['phone_reference']}: {report['keys_destroyed']} "
        f"key(s) destroyed; running services stop reading them within "
        f"{report['running_services_within_seconds']} s",
        err=True,
    )
    for step in report["remaining_steps"]:
        typer.echo(f"  still to do: {step}", err=True)


BootstrapServers = Annotated[
    str | None,
    typer.Option(envvar="VOICETICKET_KAFKA_BOOTSTRAP_SERVERS", help="Use Kafka instead of the embedded bus."),
]
TopicNamespace = Annotated[str, typer.Option(envvar="VOICETICKET_KAFKA_TOPIC_NAMESPACE")]


def _with_bus(data_dir: Path, bootstrap_servers: str | None, topic_namespace: str, work: Any) -> Any:
    """Run ``work(bus)`` against Kafka or the embedded bus in ``data_dir``."""

    if not bootstrap_servers and not (data_dir / "bus.db").exists():
        raise fail(f"no embedded bus in {data_dir}", 2)

    async def run() -> Any:
        if bootstrap_servers:
            from voiceticket_common.bus.kafka import KafkaEventBus

            bus: Any = KafkaEventBus(bootstrap_servers, "voiceticket-cli", topic_namespace=topic_namespace)
        else:
            from voiceticket_common.bus.embedded import EmbeddedEventBus

            bus = EmbeddedEventBus(data_dir / "bus.db", "voiceticket-cli")
        await bus.start()
        try:
            return await work(bus)
        finally:
            await bus.stop()

    try:
        return asyncio.run(run())
    except OSError as exc:
        raise fail(f"could not reach the bus: {exc}", 3) from None


@dlq_app.command("list")
def dead_letters_list(
    group: Annotated[str, typer.Argument(help="Consumer group, e.g. voiceticket-jira-writer.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    bootstrap_servers: BootstrapServers = None,
    topic_namespace: TopicNamespace = "",
) -> None:
    """List what a consumer group dead-lettered, with the reason (payloads are not printed)."""

    letters = _with_bus(data_dir, bootstrap_servers, topic_namespace, lambda bus: bus.dead_letters(group))
    for letter in letters:
        typer.echo(
            f"{letter.call_sid}  {letter.original_topic}  {letter.error_type}  "
            f"attempts={letter.attempts}  {letter.error}"
        )
    typer.echo(f"{len(letters)} dead letter(s)", err=True)


@dlq_app.command("replay")
def dead_letters_replay(
    group: Annotated[str, typer.Argument(help="Consumer group whose dead letters to deliver again.")],
    call_sid: Annotated[
        str | None, typer.Option(help="Only this call's dead letters (default: all of the group's).")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    bootstrap_servers: BootstrapServers = None,
    topic_namespace: TopicNamespace = "",
) -> None:
    """Deliver dead letters again once their cause is fixed (handlers are idempotent)."""

    async def replay(bus: Any) -> int:
        letters = [d for d in await bus.dead_letters(group) if call_sid is None or d.call_sid == call_sid]
        for letter in letters:
            await bus.replay(letter)
        return len(letters)

    count = _with_bus(data_dir, bootstrap_servers, topic_namespace, replay)
    typer.echo(f"{count} dead letter(s) replayed", err=True)
    if call_sid and not count:
        raise fail(f"no dead letter for call {call_sid} in {group}")


@app.command()
def purge(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")] = False,
    twilio_api_base_url: Annotated[
        str, typer.Option(help="Twilio REST API base URL (recordings due for deletion go there).")
    ] = "https://api.twilio.com",
    allow_host: Annotated[
        list[str] | None, typer.Option(help="Extra egress entry (repeatable), as for `run`.")
    ] = None,
) -> None:
    """Delete what is past its retention in the embedded data directory, once: bus records, the
    services' ledgers, recordings due at Twilio, config-api's audit log. Prints the counts per
    store as JSON (no personal data). Safe beside a running `voiceticket run`, which also purges
    on its own schedule. Distributed deployments run `python -m voiceticket_<service> purge`."""

    if not (data_dir / "bus.db").exists():
        raise fail(f"no embedded data in {data_dir}", 2)
    from voiceticket_common.logging import setup_logging

    from .embedded import DEFAULT_EGRESS, EmbeddedOptions, purge_data_dir

    setup_logging("voiceticket")
    options = EmbeddedOptions(
        data_dir=data_dir,
        egress_allowed_hosts=[*DEFAULT_EGRESS, *(allow_host or [])],
        twilio_api_base_url=twilio_api_base_url,
        log_level="WARNING",
    )
    try:
        report = asyncio.run(purge_data_dir(options, dry_run=dry_run))
    except OSError as exc:
        raise fail(f"could not purge: {exc}") from None
    typer.echo(json.dumps(report, sort_keys=True))


def main() -> None:
    app(prog_name="voiceticket")


if __name__ == "__main__":
    main()
