"""Trying the product on one machine: ``voiceticket run --with-sandboxes`` starts the provider
stand-ins in the same process on loopback, registers their accounts and a demo tenant and line,
allows egress to them, and writes where everything listens to ``<data-dir>/sandboxes.json``;
``voiceticket simulate-call --sample NAME`` reads that file to play a call and find its request.

The stand-ins come with the ``sandbox`` extra, so they are imported inside the functions, never
when this module is imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data_dir import FILE_MODE, secure_data_dir
from .embedded import EmbeddedOptions, EmbeddedRuntime

SANDBOXES_FILE = "sandboxes.json"
SEED_FILE = "sandbox-seed.json"
LOOPBACK_EGRESS = "http://127.0.0.1:*"
DEFAULT_SANDBOX_PORT = 9001


@dataclass(frozen=True)
class TryIt:
    """Where a running ``voiceticket run --with-sandboxes`` listens (``sandboxes.json``)."""

    ingress: str
    config_api: str
    twilio: str
    openai: str
    jira: str
    tenant: str
    line: str

    @property
    def admin_page(self) -> str:
        return f"{self.config_api}/admin"

    @property
    def issues(self) -> str:
        return f"{self.jira}/_sandbox/issues"

    @property
    def messages(self) -> str:
        return f"{self.twilio}/_sandbox/messages"

    @classmethod
    def load(cls, data_dir: Path) -> TryIt | None:
        """What ``data_dir``'s running sandboxed runtime wrote; None when there is none."""
        try:
            data = json.loads((data_dir / SANDBOXES_FILE).read_text())
            return cls(**{f.name: str(data[f.name]) for f in dataclasses.fields(cls)})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, data_dir: Path) -> Path:
        path = data_dir / SANDBOXES_FILE
        _write_private(path, json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def sandbox_ports(base: int) -> tuple[int, int, int]:
    """Twilio, OpenAI and Jira stand-in ports: ``base``, ``base + 1``, ``base + 2`` (0: any free)."""
    return (0, 0, 0) if base == 0 else (base, base + 1, base + 2)


@contextlib.asynccontextmanager
async def run_with_sandboxes(
    options: EmbeddedOptions, sandbox_port: int, speech_to_text: str
) -> AsyncIterator[tuple[EmbeddedRuntime, TryIt]]:
    """The stand-ins, then the embedded runtime seeded with the demo tenant pointing at them."""
    from voiceticket_sandbox import run_sandboxes
    from voiceticket_sandbox.demo_tenant import SUPPORT_LINE, configure_sandboxes

    from .demo import demo_seed

    secure_data_dir(options.data_dir)
    async with run_sandboxes(ports=sandbox_ports(sandbox_port)) as urls:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        seed: dict[str, Any] = demo_seed(urls.twilio, urls.openai, urls.jira,
                                         "local" if speech_to_text == "local" else "stand_in")  # fmt: skip
        seed_file = options.data_dir / SEED_FILE
        _write_private(seed_file, json.dumps(seed, indent=2))  # noqa: ASYNC230 - once, before start
        sandboxed = dataclasses.replace(
            options,
            seed_file=seed_file,
            twilio_api_base_url=urls.twilio,
            egress_allowed_hosts=[*options.egress_allowed_hosts, LOOPBACK_EGRESS],
        )
        async with EmbeddedRuntime(sandboxed) as runtime:
            tried = TryIt(runtime.ingress_url, runtime.config_api_url, urls.twilio, urls.openai_v1,
                          urls.jira, seed["tenants"][0]["id"], SUPPORT_LINE)  # fmt: skip
            state = tried.save(options.data_dir)
            try:
                yield runtime, tried
            finally:
                state.unlink(missing_ok=True)


def next_steps(tried: TryIt, data_dir: Path) -> list[str]:
    """What ``run --with-sandboxes`` prints: where everything is, and what to do next."""
    here = "" if data_dir == Path(".voiceticket") else f" --data-dir {data_dir}"
    return [
        "Voice to Ticket is running against local provider stand-ins (nothing leaves this machine):",
        f"  ingress (Twilio webhooks): {tried.ingress}/twilio/voice",
        f"  config-api:                {tried.config_api}  (admin token in {data_dir / 'secrets.json'})",
        f"  admin page:                {tried.admin_page}",
        f"  Twilio stand-in:           {tried.twilio}  (SMS sent: {tried.messages})",
        f"  OpenAI stand-in:           {tried.openai}",
        f"  Jira stand-in:             {tried.jira}  (requests: {tried.issues})",
        f"  demo tenant '{tried.tenant}', support line {tried.line}",
        "Next, in a second terminal:",
        f"  voiceticket simulate-call --sample vpn-outage{here}",
        f"  (samples: `voiceticket samples`); then open {tried.issues} and the admin page.",
        "Stop with Ctrl-C.",
    ]


async def request_key(bus_path: Path, call_sid: str) -> str | None:
    """The JSM request key of the call's ``ticket.created`` record on the embedded bus (the key
    is not personal data: it is never sealed)."""
    from voiceticket_common.bus.archive import EmbeddedArchive

    for record in await EmbeddedArchive(bus_path).records([call_sid]):
        if record.topic.startswith("voiceticket.ticket.created.") and record.value:
            try:
                key = json.loads(record.value).get("issue_key")
            except (ValueError, AttributeError):
                continue
            if isinstance(key, str):
                return key
    return None
