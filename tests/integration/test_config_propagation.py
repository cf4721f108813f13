"""A line change takes effect within a second, on both buses, although every service caches its
config for five minutes: config-api's outbox announces it (``config.changed``) and every
follower drops the line. Embedded: the whole runtime in this process. Kafka: config-api with its
own relay and producer, and ingress (its own config client) on the real broker, both in this
process, with a notifier-view client beside them as a consumer service holds one."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sandboxed_runtime import seeded_options

from voiceticket.embedded import EmbeddedRuntime, bind, serve
from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.config_changes import invalidating
from voiceticket_common.config_client import RuntimeConfigClient
from voiceticket_common.runtime_views import NotifierView
from voiceticket_config_api import Settings as ConfigApiSettings
from voiceticket_config_api import create_app as create_config_api
from voiceticket_ingress.app import create_app as create_ingress
from voiceticket_ingress.settings import IngressSettings
from voiceticket_sandbox import run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, seed

CALLER = "+14155550142"
CACHED_FOR = 300.0
"""Far longer than the test: only the announcement can explain a new value."""
WITHIN = 1.0
ADMIN = "propagation-admin-token-0123456789"  # noqa: S105 - test value
TOKENS = {"ingress": "propagation-ingress-0123456789", "notifier": "propagation-notifier-0123456789"}


def the_line(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    [line] = config["lines"]
    return {**{k: v for k, v in line.items() if k != "number"}, **changes}


async def heard(simulator: CallerSimulator, ingress_url: str) -> str:
    """What a caller of the support line hears first: the TwiML of a new call's voice webhook."""
    params = simulator.call_params("CA" + secrets.token_hex(16), CALLER, SUPPORT_LINE)
    response = await simulator.post_signed(f"{ingress_url}/twilio/voice", params)
    assert response.status_code == 200, response.text
    return response.text


async def seconds_until(check: Any, limit: float = 5.0) -> float:
    """How long until ``check()`` (async) is true, polled every 20 ms; fails after ``limit``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > limit:
            raise AssertionError(f"not seen within {limit} s")
        await asyncio.sleep(0.02)
    return loop.time() - started


async def change_greeting(
    http: httpx.AsyncClient, config_api: str, admin: str, config: dict[str, Any], greeting: str
) -> None:
    response = await http.put(
        f"{config_api}/v1/lines/{SUPPORT_LINE}",
        json=the_line(config, greeting=greeting),
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 200, response.text


async def test_a_line_change_reaches_the_embedded_services_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICETICKET_CONFIG_CACHE_SECONDS", str(CACHED_FOR))
    async with run_sandboxes() as urls:
        config = seed(urls.twilio, urls.openai, urls.jira)
        options = await seeded_options(tmp_path, urls, config)
        async with EmbeddedRuntime(options) as runtime, httpx.AsyncClient(timeout=10) as http:
            simulator = CallerSimulator(
                runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio, http_client=http
            )
            assert "Thank you for calling Acme support." in await heard(simulator, runtime.ingress_url)
            await change_greeting(
                http, runtime.config_api_url, runtime.admin_token.get_secret_value(), config, "Welcome back."
            )

            async def new_greeting() -> bool:
                return "Welcome back." in await heard(simulator, runtime.ingress_url)

            assert await seconds_until(new_greeting) < WITHIN


def config_api_settings(tmp_path: Path, kafka: str, namespace: str, seed_file: Path) -> ConfigApiSettings:
    return ConfigApiSettings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'config-api.db'}",
        master_keys=SecretStr(f"k1:{Fernet.generate_key().decode()}"),
        admin_token=SecretStr(ADMIN),
        service_tokens=SecretStr(",".join(f"{role}:{token}" for role, token in TOKENS.items())),
        seed_file=seed_file,
        kafka_bootstrap_servers=kafka,
        kafka_topic_namespace=namespace,
        outbox_poll_seconds=5.0,  # its own changes wake the relay: no help from polling
    )


@asynccontextmanager
async def kafka_bus(kafka: str, namespace: str, source: str) -> AsyncIterator[KafkaEventBus]:
    bus = KafkaEventBus(kafka, source, partitions=1, topic_namespace=namespace)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def test_a_line_change_reaches_services_on_kafka_within_a_second(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    namespace = f"propagation-{secrets.token_hex(4)}"
    config = seed("http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9")
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(config))
    config_api = create_config_api(config_api_settings(tmp_path, kafka_bootstrap, namespace, seed_file))
    config_api_server = await serve(config_api, bind("127.0.0.1", 0))
    ingress_socket = bind("127.0.0.1", 0)
    ingress_url = f"http://127.0.0.1:{ingress_socket.getsockname()[1]}"
    ingress_settings = IngressSettings(
        config_api_url=config_api_server.url,
        config_api_token=SecretStr(TOKENS["ingress"]),
        config_cache_seconds=CACHED_FOR,
        public_base_url=ingress_url,
        port=ingress_socket.getsockname()[1],
    )
    notifier_config = RuntimeConfigClient(
        NotifierView, config_api_server.url, SecretStr(TOKENS["notifier"]), cache_seconds=CACHED_FOR
    )
    try:
        async with (
            kafka_bus(kafka_bootstrap, namespace, "ingress") as ingress_bus,
            kafka_bus(kafka_bootstrap, namespace, "notifier") as notifier_bus,
            invalidating(notifier_bus, notifier_config, "notifier"),
            httpx.AsyncClient(timeout=10) as http,
        ):
            ingress_server = await serve(create_ingress(ingress_settings, ingress_bus), ingress_socket)
            try:
                simulator = CallerSimulator(
                    ingress_url, ACCOUNT_SID, AUTH_TOKEN, "http://127.0.0.1:9", http_client=http
                )
                assert "Thank you for calling Acme support." in await heard(simulator, ingress_url)
                assert (await notifier_config.line(SUPPORT_LINE)).line.sms_enabled is True
                response = await http.put(
                    f"{config_api_server.url}/v1/lines/{SUPPORT_LINE}",
                    json=the_line(config, greeting="Welcome back.", sms_enabled=False),
                    headers={"Authorization": f"Bearer {ADMIN}"},
                )
                assert response.status_code == 200, response.text

                async def new_greeting() -> bool:
                    return "Welcome back." in await heard(simulator, ingress_url)

                async def sms_off() -> bool:
                    return (await notifier_config.line(SUPPORT_LINE)).line.sms_enabled is False

                both = await asyncio.gather(seconds_until(new_greeting), seconds_until(sms_off))
                assert max(both) < WITHIN, both
                assert config_api.state.outbox.published >= 2  # the seed's, then the change
            finally:
                ingress_server.server.should_exit = True
                await ingress_server.task
    finally:
        await notifier_config.aclose()
        config_api_server.server.should_exit = True
        await config_api_server.task
