"""The ``voiceticket`` command.

Exit codes: 0 success; 1 the operation failed (a call did not become a ticket, a service failed,
config-api refused the input: the message names the fields); 2 wrong usage (an unknown option, a
file that is not a JSON object); 3 a server the command needs (config-api, Kafka, ingress) could
not be reached or refused the credentials. Every error is one line on stderr, never a traceback.
Commands that print data print it for people, or as JSON with ``--json``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.util
import json
import logging
import os
import re
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from .samples import sample_calls

EXIT_CODES = (
    "Exit codes: 0 ok; 1 the operation failed (a call did not become a ticket, config-api refused "
    "the input); 2 wrong usage (bad option, a file that is not a JSON object); 3 config-api, Kafka "
    "or ingress unreachable, or the token refused."
)
app = typer.Typer(
    help="Voice to Ticket: support calls on Twilio become Jira Service Management requests.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
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
credentials_app = typer.Typer(
    help="A tenant's credentials (Jira, Twilio, OpenAI): write-only, stored encrypted.", no_args_is_help=True
)
master_key_app = typer.Typer(help="config-api's master key (encrypts the credentials).", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Named admin tokens (scope admin or read-only): create, list, revoke.", no_args_is_help=True
)
app.add_typer(credentials_app, name="credentials")
app.add_typer(master_key_app, name="master-key")
app.add_typer(tokens_app, name="tokens")

SERVICES = ("ingress", "transcriber", "analyzer", "jira-writer", "notifier", "config-api")
DEFAULT_DATA_DIR: Path = Path(os.environ.get("VOICETICKET_DATA_DIR", ".voiceticket"))

DataDir = Annotated[Path, typer.Option(help="Where the embedded runtime keeps its databases and secrets.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"voiceticket {version('voiceticket')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Voice to Ticket: support calls on Twilio become Jira Service Management requests."""


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
    with_sandboxes: Annotated[
        bool,
        typer.Option(
            "--with-sandboxes",
            help="Try it on one machine: also start the Twilio, OpenAI and Jira stand-ins on loopback, "
            "with a demo tenant and line registered (then `voiceticket simulate-call --sample NAME`).",
        ),
    ] = False,
    sandbox_port: Annotated[
        int,
        typer.Option(
            help="With --with-sandboxes: the Twilio stand-in's port; OpenAI's is +1, Jira's +2 (0: any)."
        ),
    ] = 9001,
    speech_to_text: Annotated[
        str,
        typer.Option(
            help="With --with-sandboxes: `stand-in` (the OpenAI stand-in answers with the sample's "
            "reference transcript) or `local` (the transcriber's Whisper engine, English only)."
        ),
    ] = "stand-in",
) -> None:
    """Run all six services in this process over the embedded bus (the default), or one service."""

    _check_run_usage(service, seed, with_sandboxes, speech_to_text)
    if service is not None:
        _run_service(service)
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
        if with_sandboxes:
            from .try_it import next_steps, run_with_sandboxes

            async with run_with_sandboxes(options, sandbox_port, speech_to_text) as (_, tried):
                for line in next_steps(tried, data_dir):
                    typer.echo(line, err=True)
                await stop.wait()
            return
        async with EmbeddedRuntime(options) as runtime:
            typer.echo(f"ingress (Twilio webhooks): {runtime.ingress_url}/twilio/voice", err=True)
            typer.echo(
                f"config-api: {runtime.config_api_url}  (admin token in {data_dir / 'secrets.json'})",
                err=True,
            )
            await stop.wait()

    _start(main, with_sandboxes)


def _check_run_usage(
    service: str | None, seed: Path | None, with_sandboxes: bool, speech_to_text: str
) -> None:
    """Exit 2 with one line on options that do not go together, or a seed file config-api would refuse."""
    if with_sandboxes:
        require_sandbox("run --with-sandboxes")
        if seed is not None or service is not None:
            raise fail("--with-sandboxes registers its own demo tenant: leave out --seed and --service", 2)
        if speech_to_text not in ("stand-in", "local"):
            raise fail(f"unknown --speech-to-text {speech_to_text!r}; choose stand-in or local", 2)
    if service is not None and service not in SERVICES:
        raise fail(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}", 2)
    if seed is not None:
        _check_seed(seed)


def _settings_problems(exc: Any) -> str:
    """A pydantic ValidationError as one line: each location and message, never the input."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'setting'}: {e['msg']}"
                         for e in exc.errors(include_input=False))  # fmt: skip
    return f"{exc.title}: {problems}"


def _start(main: Any, with_sandboxes: bool) -> None:
    """Run the embedded runtime's ``main`` until it stops; start-up failures as one line."""
    from pydantic import ValidationError

    try:
        asyncio.run(main())
    except OSError as exc:
        raise fail(f"could not start: {exc}") from None
    except RuntimeError as exc:  # a stand-in could not listen (run_sandboxes says which port)
        if not with_sandboxes:
            raise
        raise fail(f"could not start the stand-ins: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:  # a setting refused at start (e.g. VOICETICKET_ENVIRONMENT=prod)
        raise fail(f"refusing to start: {_settings_problems(exc)}", 2) from None


def _run_service(service: str) -> None:
    """One service in this process; a bus or database it cannot reach exits 3 with one line."""
    from pydantic import ValidationError

    from voiceticket_common.bus.kafka_security import KafkaConnectFailed

    module = importlib.import_module(f"voiceticket_{service.replace('-', '_')}.__main__")
    try:
        module.main()
    except KafkaConnectFailed as exc:  # says why: refused, credentials, a certificate
        raise fail(f"{service}: {' '.join(str(exc).split())}", 3) from None
    except ValidationError as exc:
        raise fail(f"{service} refuses to start: {_settings_problems(exc)}", 2) from None
    except OSError as exc:
        raise fail(f"{service} could not start: {' '.join(str(exc).split())}") from None


def _check_seed(seed: Path) -> None:
    """Exit 2 with one line naming the file's problem (not JSON, a field) before anything starts:
    config-api would otherwise refuse it inside its start-up, as a traceback in the logs."""
    _read_json(seed, "seed (tenants and lines)")
    from voiceticket_config_api.store import load_seed

    try:
        load_seed(seed)
    except RuntimeError as exc:  # names each field's location and message, never a value
        raise fail(str(exc), 2) from None


@app.command()
def samples(
    as_json: Annotated[bool, typer.Option("--json", help="Print the samples as JSON.")] = False,
) -> None:
    """List the bundled sample calls."""

    if as_json:
        typer.echo(json.dumps([{"name": c.name, "language": c.language, "duration_seconds": c.duration_seconds,
                                "description": c.description} for c in sample_calls().values()], indent=2))  # fmt: skip
        return
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
    speech_to_text: Annotated[
        str,
        typer.Option(
            help="`local`: the transcriber's Whisper engine recognises the audio (the default; no key "
            "needed); `stand-in`: the OpenAI stand-in answers with the sample's reference transcript."
        ),
    ] = "local",
) -> None:
    """Play a bundled sample call through the sandboxes and print the resulting request and SMS."""

    require_sandbox("demo")
    from .demo import DemoFailed, run_demo, run_distributed_demo

    calls = sample_calls()
    if sample not in calls:
        raise fail(f"unknown sample {sample!r}; choose one of {', '.join(calls)}", 2)
    call = calls[sample]
    if speech_to_text not in ("local", "stand-in"):
        raise fail(f"unknown --speech-to-text {speech_to_text!r}; choose local or stand-in", 2)
    stt: Any = "local" if speech_to_text == "local" else "stand_in"
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
                result = asyncio.run(run_demo(call, workdir, progress, speech_to_text=stt))
        except DemoFailed as exc:
            raise fail(str(exc)) from None
    if as_json:
        recognition = getattr(result, "recognition", None)
        typer.echo(json.dumps({"call_sid": result.call_sid, "issue": result.issue, "sms": result.sms,
                               "timeline": result.timeline,
                               "speech_to_text": recognition and dataclasses.asdict(recognition)},
                              indent=2))  # fmt: skip
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
    print_recognition(getattr(result, "recognition", None))
    echo("Timeline:")
    for step, offset in result.timeline:
        echo(f"  +{offset * 1000:7.0f} ms  {step}")
    if result.invalid_requests:
        typer.secho(f"{len(result.invalid_requests)} provider request(s) broke the official specs", fg="red")


def print_recognition(recognition: Any) -> None:
    if recognition is None:
        return
    echo = typer.echo
    how = "recognised by" if recognition.engine == "local" else "looked up by the OpenAI stand-in as"
    typer.secho(f"Speech-to-text ({how} {recognition.model}):", bold=True)
    if recognition.note:
        echo(f"  note: {recognition.note}")
    echo(f"  {'recognised:' if recognition.engine == 'local' else 'answered:  '} {recognition.recognised}")
    echo(f"  reference:  {recognition.reference}")
    language = f", detected language {recognition.detected_language}" if recognition.detected_language else ""
    echo(f"  word error rate: {recognition.word_error_rate:.1%}{language}")


TICKET_TOPIC = "voiceticket.ticket.created.v1"
NO_TICKET_TOPICS = {  # a call that ends here never becomes a ticket
    "voiceticket.call.recording.absent.v1": "no recording",
    "voiceticket.call.consent.declined.v1": "consent declined",
}
DEAD_LETTER_PREFIX = "voiceticket.dlq."


async def follow_call(bus_path: Path, call_sid: str, wait_seconds: float) -> tuple[str, list[str]]:
    """How a call ended on the embedded bus at ``bus_path``: ``ticket``, ``dead-lettered``, ``no
    recording``, ``consent declined`` or ``timeout``; and the topics of its records, in order."""
    from voiceticket_common.bus.embedded import EmbeddedEventBus

    bus = EmbeddedEventBus(bus_path, "voiceticket-cli")
    await bus.start()
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            topics = [topic for topic, _ in await bus.history(call_sid)]
            if TICKET_TOPIC in topics:
                return "ticket", topics
            if any(t.startswith(DEAD_LETTER_PREFIX) for t in topics):
                return "dead-lettered", topics
            for topic, outcome in NO_TICKET_TOPICS.items():
                if topic in topics:
                    return outcome, topics
            if time.monotonic() >= deadline:
                return "timeout", topics
            await asyncio.sleep(0.2)
    finally:
        await bus.stop()


SAMPLE_NAMES = ", ".join(sample_calls())


@app.command("simulate-call")
def simulate_call(
    sample: Annotated[
        str | None,
        typer.Option(
            help=f"A bundled sample call ({SAMPLE_NAMES}): its audio, caller and transcript, played to "
            "the support line of a running `voiceticket run --with-sandboxes`; prints the request key."
        ),
    ] = None,
    audio: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="WAV file the caller 'speaks'.")
    ] = None,
    from_number: Annotated[str | None, typer.Option("--from", help="Caller number (E.164).")] = None,
    to_number: Annotated[str | None, typer.Option("--to", help="Support line number (E.164).")] = None,
    transcript: Annotated[
        str | None, typer.Option(help="What the OpenAI sandbox will transcribe the audio as.")
    ] = None,
    ingress_url: Annotated[
        str | None,
        typer.Option(
            envvar="VOICETICKET_INGRESS_URL",
            help="Default: the running --with-sandboxes runtime's, else http://127.0.0.1:8080.",
        ),
    ] = None,
    twilio_sandbox_url: Annotated[
        str | None,
        typer.Option(
            envvar="VOICETICKET_TWILIO_SANDBOX_URL",
            help="Default: the running --with-sandboxes runtime's, else http://127.0.0.1:9001.",
        ),
    ] = None,
    account_sid: Annotated[str, typer.Option(envvar="VOICETICKET_TWILIO_ACCOUNT_SID")] = "",
    auth_token: Annotated[
        str, typer.Option(envvar="VOICETICKET_TWILIO_AUTH_TOKEN", help="Signs the webhooks.")
    ] = "",
    wait: Annotated[
        bool,
        typer.Option(
            help="Follow the call on the embedded bus of --data-dir until it becomes a ticket "
            "(exit 0) or cannot (exit 1: dead-lettered, no recording, consent declined, timeout)."
        ),
    ] = True,
    timeout: Annotated[float, typer.Option(min=0.0, help="Seconds to wait for the ticket.")] = 90.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Play one call against any running ingress, signed as Twilio signs it, and wait until it
    became a ticket. Prints the call's outcome (and request_key) as JSON; exits 1 when it did not
    become a ticket. `--sample NAME` plays a bundled call to `voiceticket run --with-sandboxes`.
    Following a call needs the embedded bus (`voiceticket run`); on Kafka pass --no-wait."""

    require_sandbox("simulate-call")
    from .try_it import TryIt, request_key

    tried = TryIt.load(data_dir)
    call = _call_to_play(sample, audio, from_number, to_number, transcript, tried)
    bus_path = data_dir / "bus.db"
    if wait and not bus_path.exists():
        raise fail(
            f"cannot follow the call: no embedded bus in {data_dir} (pass the --data-dir of "
            "`voiceticket run`, or --no-wait)",
            2,
        )
    from voiceticket_sandbox.caller import CallerSimulator
    from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN

    simulator = CallerSimulator(
        ingress_url or (tried.ingress if tried else "http://127.0.0.1:8080"),
        account_sid or ACCOUNT_SID,
        auth_token or AUTH_TOKEN,
        twilio_sandbox_url or (tried.twilio if tried else "http://127.0.0.1:9001"),
    )
    try:
        played = asyncio.run(simulator.play_call(*call))
    except httpx.HTTPError as exc:
        raise fail(f"could not reach ingress or the Twilio sandbox: {type(exc).__name__}", 3) from None
    result: dict[str, Any] = {"call_sid": played.call_sid, "voice_status": played.voice_status,
                              "recording_status": played.recording_status}  # fmt: skip
    answered = played.voice_status == 200 and (played.recording_status or 0) < 400
    if answered and wait:
        outcome, topics = asyncio.run(follow_call(bus_path, played.call_sid, timeout))
        result |= {"outcome": outcome, "steps": [t.removeprefix("voiceticket.") for t in topics]}
        if outcome == "ticket":
            result["request_key"] = asyncio.run(request_key(bus_path, played.call_sid))
    typer.echo(json.dumps(result))
    if result.get("request_key"):
        where = f" (see {tried.issues})" if tried else ""
        typer.echo(f"call {played.call_sid} became request {result['request_key']}{where}", err=True)
    if not answered:
        raise fail(
            f"ingress refused the call (HTTP {played.voice_status}, recording {played.recording_status})"
        )
    if wait and result["outcome"] != "ticket":
        why = f"within {timeout:g} s" if result["outcome"] == "timeout" else f"({result['outcome']})"
        raise fail(f"call {played.call_sid} did not become a ticket {why}")


def _call_to_play(
    sample: str | None,
    audio: Path | None,
    from_number: str | None,
    to_number: str | None,
    transcript: str | None,
    tried: Any,
) -> tuple[str, str, bytes, str, int]:
    """(from, to, audio, transcript, seconds) of the call ``simulate-call`` plays: a sample's,
    each part overridable, or the one given in full; exits 2 naming what is missing."""
    line = to_number or (tried.line if tried else None)
    if sample is not None:
        calls = sample_calls()
        if sample not in calls:
            raise fail(f"unknown sample {sample!r}; choose one of {', '.join(calls)}", 2)
        chosen = calls[sample]
        if line is None:
            raise fail(
                "--sample needs a running `voiceticket run --with-sandboxes` (same --data-dir) or --to", 2
            )
        wav = audio.read_bytes() if audio else chosen.audio
        return (
            from_number or chosen.caller,
            line,
            wav,
            transcript or chosen.transcript,
            chosen.duration_seconds,
        )
    missing = [name for name, value in (("--audio", audio), ("--from", from_number), ("--to", line),
                                        ("--transcript", transcript)) if value is None]  # fmt: skip
    if missing or audio is None or from_number is None or line is None or transcript is None:
        raise fail(f"pass --sample NAME, or {', '.join(missing)}", 2)
    return from_number, line, audio.read_bytes(), transcript, 12


# -- admin ------------------------------------------------------------------------------------

ConfigUrl = Annotated[str, typer.Option(envvar="VOICETICKET_CONFIG_API_URL", help="config-api base URL.")]
AdminToken = Annotated[
    str | None,
    typer.Option(envvar="VOICETICKET_ADMIN_TOKEN", help="Admin token (default: the embedded runtime's)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Yes = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]
CREDENTIALS = (
    "jira_api_token",
    "twilio_auth_token",
    "openai_api_key",
    "jira_oauth_token",
    "speech_to_text_api_key",
    "llm_api_key",
    "jira_webhook_secret",
)
DEFAULT_CONFIG_API = "http://127.0.0.1:8085"


def _admin(config_api_url: str, admin_token: str | None, data_dir: Path) -> httpx.Client:
    token = admin_token
    secrets_file = data_dir / "secrets.json"
    if not token and secrets_file.exists():
        try:
            token = json.loads(secrets_file.read_text())["admin_token"]
        except (ValueError, KeyError, TypeError, OSError):
            raise fail(f"{secrets_file} holds no admin_token", 2) from None
    if not token:
        raise fail("no admin token: pass --admin-token or VOICETICKET_ADMIN_TOKEN", 2)
    return httpx.Client(base_url=config_api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


_LOCATIONS = ("body", "path", "query")


def _detail(response: httpx.Response) -> str:
    """config-api's error in one line: each refused field by name for a 422, else its detail."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return " ".join(response.text[:200].split())
    if isinstance(detail, list):
        parts = []
        for item in detail[:10]:
            loc = [str(p) for p in item.get("loc", []) if p not in _LOCATIONS]
            parts.append(f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid')}")
        return "; ".join(parts)
    return " ".join(str(detail)[:300].split())


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
    what: str = "the request",
) -> Any:
    """One request to config-api; exits 3 when it is unreachable or refuses the token, 1 when it
    refuses the request (a 422 names the fields), with one line on stderr."""
    try:
        response = client.request(method, path, json=body, params=params)
    except httpx.HTTPError as exc:
        raise fail(f"config-api unreachable at {client.base_url}: {type(exc).__name__}", 3) from None
    if response.status_code in (401, 403):
        raise fail(f"config-api refused the admin token ({response.status_code}: {_detail(response)})", 3)
    if response.status_code == 422:
        raise fail(f"config-api refused {what} (422): {_detail(response)}")
    if response.status_code >= 400:
        raise fail(f"config-api answered {response.status_code}: {_detail(response)}")
    return response.json() if response.content else None


def _read_json(file: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``file``; a file that is not one exits 2 with one line saying why."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise fail(f"{file}: not a UTF-8 text file (expected the {what} as JSON)", 2) from None
    except json.JSONDecodeError as exc:
        raise fail(f"{file}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", 2) from None
    except OSError as exc:
        raise fail(f"{file}: cannot read it ({exc.strerror})", 2) from None
    if not isinstance(data, dict):
        raise fail(f"{file}: expected a JSON object of the {what}'s fields, found a {type(data).__name__}", 2)
    return data


def _emit(data: Any, as_json: bool, human: Any) -> None:
    """``data`` as JSON on stdout (``--json``), else ``human(data)``."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        human(data)


def _fields(obj: dict[str, Any]) -> None:
    width = max((len(k) for k in obj), default=0)
    for key, value in obj.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        typer.echo(f"{key:{width}}  {shown}")


def _table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _set_credentials(tenant: dict[str, Any]) -> str:
    return ",".join(name for name in CREDENTIALS if tenant.get(name)) or "-"


def _print_tenants(tenants: list[dict[str, Any]]) -> None:
    rows = [[t["id"], t["name"], t["jira_base_url"], _set_credentials(t)] for t in tenants]
    _table(["ID", "NAME", "JIRA", "CREDENTIALS"], rows)


def _print_lines(lines: list[dict[str, Any]]) -> None:
    rows = [[x["number"], x["tenant_id"], x["service_desk_id"], x["request_type_id"], x["language_mode"],
             x["language"]] for x in lines]  # fmt: skip
    _table(["NUMBER", "TENANT", "SERVICE DESK", "REQUEST TYPE", "LANGUAGE MODE", "LANGUAGE"], rows)


def _print_tokens(tokens: list[dict[str, Any]]) -> None:
    rows = [[t["name"], t["scope"], t["source"], t["created_at"], t["last_used_at"],
             t["revoked_at"] and f"{t['revoked_at']} by {t['revoked_by']}"] for t in tokens]  # fmt: skip
    _table(["NAME", "SCOPE", "SOURCE", "CREATED", "LAST USED", "REVOKED"], rows)


@tenants_app.command("list")
def tenants_list(
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """List tenants: id, name, Jira site and which credentials are set (--json: every field,
    credentials masked)."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", "/v1/tenants"), as_json, _print_tenants)


@tenants_app.command("show")
def tenants_show(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show one tenant, every field (credentials masked)."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", f"/v1/tenants/{tenant_id}"), as_json, _fields)


@tenants_app.command("create")
def tenants_create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Tenant as JSON.")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Create a tenant from a JSON file (the fields of POST /v1/tenants)."""

    body = _read_json(file, "tenant")
    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "POST", "/v1/tenants", body, what=f"{file.name}"), as_json, _fields)


@tenants_app.command("update")
def tenants_update(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The fields to change, as JSON.")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Change some of a tenant's fields (PATCH: the others stay). Credentials are changed with
    `voiceticket credentials set`."""

    body = _read_json(file, "tenant change")
    with _admin(config_api_url, admin_token, data_dir) as client:
        tenant = _call(client, "PATCH", f"/v1/tenants/{tenant_id}", body, what=f"{file.name}")
    _emit(tenant, as_json, _fields)


@tenants_app.command("delete")
def tenants_delete(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    yes: Yes = False,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
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
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"tenant {tenant_id} removed: {report['lines_deleted']} line(s), {report['call_keys_destroyed']} call "
        "key(s) destroyed. Still to do at the providers:"
    )
    for step in report["revocation_steps"]:
        typer.echo(f"  - {step}")


@tenants_app.command("test")
def tenants_test(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Check the tenant's stored credentials: one read at Jira, Twilio and the OpenAI-compatible
    server, each provider's own answer printed. Exits 1 when any of them failed."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        client.timeout = httpx.Timeout(60)  # config-api waits up to 10 s on each provider
        tested = _call(client, "POST", f"/v1/tenants/{tenant_id}/connection-test")
    results = tested["results"]
    _emit(tested, as_json, lambda _: _table(
        ["PROVIDER", "RESULT", "ANSWER"], [[r["provider"], "ok" if r["ok"] else "FAILED", r["answer"]]
                                           for r in results]))  # fmt: skip
    failed = [r["provider"] for r in results if not r["ok"]]
    if failed:
        raise fail(f"tenant {tenant_id}: {', '.join(failed)} failed the connection test")


@lines_app.command("list")
def lines_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's lines.")] = None,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """List lines (--json: every setting)."""

    params = {"tenant_id": tenant} if tenant else None
    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", "/v1/lines", params=params), as_json, _print_lines)


@lines_app.command("show")
def lines_show(
    number: Annotated[str, typer.Argument(help="The Twilio number, E.164.")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show one line, every setting."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", f"/v1/lines/{number}"), as_json, _fields)


@lines_app.command("set")
def lines_set(
    number: Annotated[str, typer.Argument(help="The Twilio number, E.164.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Line settings as JSON.")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Create or replace a line (the fields of PUT /v1/lines/{number})."""

    body = _read_json(file, "line")
    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "PUT", f"/v1/lines/{number}", body, what=f"{file.name}"), as_json, _fields)


@lines_app.command("delete")
def lines_delete(
    number: Annotated[str, typer.Argument(help="The Twilio number, E.164.")],
    yes: Yes = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Delete a line: its calls are then answered as an unknown line."""

    if not yes:
        typer.confirm("Delete this line? Its calls are then refused", abort=True)
    with _admin(config_api_url, admin_token, data_dir) as client:
        _call(client, "DELETE", f"/v1/lines/{number}")
    typer.echo("line deleted", err=True)


CredentialArg = Annotated[str, typer.Argument(help=f"One of {', '.join(CREDENTIALS)}.")]
ValueFile = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        help="Read the value from this file (default: standard input, or a hidden prompt on a "
        "terminal). Never on the command line: it would stay in the shell's history.",
    ),
]


def _secret_value(value_file: Path | None, name: str) -> str:
    if value_file is not None:
        try:
            text = value_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{value_file}: cannot read it ({type(exc).__name__})", 2) from None
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        text = typer.prompt(f"{name}", hide_input=True, confirmation_prompt=True)
    value = text.strip()
    if not value:
        raise fail(f"no value for {name} (empty input)", 2)
    return value


def _put_credential(config_api_url: str, admin_token: str | None, data_dir: Path, tenant_id: str,
                    name: str, value_file: Path | None, rotate: bool, as_json: bool) -> None:  # fmt: skip
    if name not in CREDENTIALS:
        raise fail(f"unknown credential {name!r}; choose one of {', '.join(CREDENTIALS)}", 2)
    with _admin(config_api_url, admin_token, data_dir) as client:
        if rotate and not _call(client, "GET", f"/v1/tenants/{tenant_id}").get(name):
            raise fail(f"tenant {tenant_id} has no {name} to rotate; use `voiceticket credentials set`")
        value = _secret_value(value_file, name)
        tenant = _call(client, "PUT", f"/v1/tenants/{tenant_id}/credentials/{name}", {"value": value},
                       what=f"the {name}")  # fmt: skip
    _emit(
        tenant,
        as_json,
        lambda t: typer.echo(f"tenant {tenant_id}: {name} stored ({t.get(name) or 'masked'})"),
    )


@credentials_app.command("set")
def credentials_set(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    name: CredentialArg,
    value_file: ValueFile = None,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Store a tenant's credential (encrypted under the master key; shown masked afterwards)."""

    _put_credential(config_api_url, admin_token, data_dir, tenant_id, name, value_file, False, as_json)


@credentials_app.command("rotate")
def credentials_rotate(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    name: CredentialArg,
    value_file: ValueFile = None,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Replace a credential the tenant already has (fails when it has none; audited as
    credential.rotate). Revoke the old value at the provider afterwards."""

    _put_credential(config_api_url, admin_token, data_dir, tenant_id, name, value_file, True, as_json)


@master_key_app.command("rotate")
def master_key_rotate(
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Re-encrypt every stored credential and call key under the primary master key (the first of
    CONFIG_API_MASTER_KEYS): prepend a new key, restart config-api, run this, then drop the old key."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        result = _call(client, "POST", "/v1/admin/rotate-master-key")
    _emit(result, as_json, lambda r: typer.echo(
        f"re-encrypted {r['reencrypted']} secret(s) under master key {r['primary_kid']}"))  # fmt: skip


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Who holds it (the audit log's actor), e.g. alice.")],
    scope: Annotated[
        str, typer.Option(help="admin (everything) or read-only (may read, never change).")
    ] = "admin",
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Create a named admin token and print it, this once (config-api keeps only its hash)."""

    if scope not in ("admin", "read-only"):
        raise fail(f"unknown scope {scope!r}; choose admin or read-only", 2)
    with _admin(config_api_url, admin_token, data_dir) as client:
        created = _call(client, "POST", "/v1/admin/tokens", {"name": name, "scope": scope}, what="the token")
    if as_json:
        typer.echo(json.dumps(created, indent=2))
    else:
        typer.echo(created["token"])
    typer.echo(f"token {name} ({scope}) created: shown this once, keep it now", err=True)


@tokens_app.command("list")
def tokens_list(
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """List admin tokens: name, scope, where it is set, created, last used, revoked (never a token)."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", "/v1/admin/tokens"), as_json, _print_tokens)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    yes: Yes = False,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Revoke a token: refused from its next request on; it stays listed, its name is not reused."""

    if not yes:
        typer.confirm(f"Revoke token {name!r}? This cannot be undone", abort=True)
    with _admin(config_api_url, admin_token, data_dir) as client:
        revoked = _call(client, "DELETE", f"/v1/admin/tokens/{name}")
    _emit(revoked, as_json, lambda t: typer.echo(f"token {name} revoked at {t['revoked_at']}"))


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
    # aiokafka logs each failed connection; without logging set up Python would print those
    # lines beside ours (KafkaConnectFailed below says why, once).
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())

    async def run() -> Any:
        if bootstrap_servers:
            from voiceticket_common.bus.kafka import KafkaEventBus
            from voiceticket_common.bus.kafka_security import security_from_environment

            bus: Any = KafkaEventBus(
                bootstrap_servers,
                "voiceticket-cli",
                topic_namespace=topic_namespace,
                security=security_from_environment(),  # VOICETICKET_KAFKA_SECURITY_PROTOCOL etc.
            )
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
    except OSError as exc:  # KafkaConnectFailed says why (refused credentials, a certificate)
        raise fail(f"could not reach the bus: {' '.join(str(exc).split())}", 3) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "aiokafka":
            raise
        raise fail(f"could not reach the bus: {type(exc).__name__}", 3) from None


@dlq_app.command("list")
def dead_letters_list(
    group: Annotated[str, typer.Argument(help="Consumer group, e.g. voiceticket-jira-writer.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    bootstrap_servers: BootstrapServers = None,
    topic_namespace: TopicNamespace = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the dead letters as JSON.")] = False,
) -> None:
    """List what a consumer group dead-lettered, with the reason (payloads are not printed)."""

    letters = _with_bus(data_dir, bootstrap_servers, topic_namespace, lambda bus: bus.dead_letters(group))
    if as_json:
        fields = ("call_sid", "original_topic", "error_type", "attempts", "error")
        typer.echo(json.dumps([{f: getattr(d, f, None) for f in fields} for d in letters], indent=2))
        return
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


db_app = typer.Typer(help="The stateful services' databases (schema).", no_args_is_help=True)
app.add_typer(db_app, name="db")

SCHEMA_OWNERS = {
    # service -> the package holding its Alembic migrations (voiceticket_common.migrations.SERVICES)
    "config-api": "voiceticket_config_api.migrations",
    "transcriber": "voiceticket_transcriber.migrations",
    "analyzer": "voiceticket_analyzer.migrations",
    "jira-writer": "voiceticket_jira_writer.migrations",
    "notifier": "voiceticket_notifier.migrations",
}


DATABASE_MODULES = {"sqlalchemy", "asyncpg", "sqlite3", "aiosqlite", "alembic"}
"""Whose errors name the host and the statement: only their type is shown."""


async def upgrade_schema(service: str, database_url: str) -> dict[str, Any]:
    """Migrate ``service``'s tables to the newest revision (Alembic, as the service does at
    start; a database made before migrations is adopted); returns the revisions and the tables
    its database then holds."""
    from sqlalchemy import inspect

    from voiceticket_common.db import open_engine
    from voiceticket_common.migrations import upgrade

    async with open_engine(database_url) as engine:
        done = await upgrade(engine, service)
        async with engine.connect() as conn:
            tables = sorted(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    return {"from": done.before, "revision": done.after, "adopted": done.adopted, "tables": tables}


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[str, typer.Argument(help=f"One of {', '.join(SCHEMA_OWNERS)}.")],
    database_url: Annotated[
        str,
        typer.Option(envvar="VOICETICKET_DATABASE_URL", help="The service's own database (a DSN)."),
    ],
) -> None:
    """Migrate the service's tables to the newest revision (Alembic), as the service itself does
    at start; once before a rollout (a Job). A database made before migrations is adopted (missing
    tables and columns added, then stamped). Idempotent. Prints the revision and the tables as
    JSON; never the DSN."""

    if service not in SCHEMA_OWNERS:
        raise fail(f"unknown service {service!r}; choose one of {', '.join(SCHEMA_OWNERS)}", 2)
    try:
        report = asyncio.run(upgrade_schema(service, database_url))
    except (OSError, ImportError) as exc:
        raise fail(f"could not upgrade {service}'s database ({type(exc).__name__})", 3) from None
    except Exception as exc:  # SQLAlchemy's errors name the host and the statement: type only
        from voiceticket_common.migrations import MigrationError

        if isinstance(exc, MigrationError):
            raise fail(f"could not upgrade {service}'s database: {exc}") from None
        if type(exc).__module__.split(".")[0] not in DATABASE_MODULES:
            raise
        raise fail(f"could not upgrade {service}'s database ({type(exc).__name__})", 3) from None
    typer.echo(json.dumps({"event": "db upgrade", "service": service, **report}))


from .cli_calls import calls_app  # noqa: E402 - it builds on this module's helpers

app.add_typer(calls_app, name="calls")

from .cli_block_list import block_list_app  # noqa: E402 - it builds on this module's helpers

app.add_typer(block_list_app, name="block-list")


def main() -> None:
    app(prog_name="voiceticket")


if __name__ == "__main__":
    main()
