"""Personal data sealed under a per-call data key: erasing the key erases every copy (crypto-shredding).

Events are copied into places we cannot rewrite: Kafka topics are append-only, dead-letter topics
and the embedded event log keep records for days, ledgers keep produced events for replays. So the
personal fields of an event (those marked ``x-personal``: the caller's number, the transcript, the
analysis, the request summary) never reach any of them in clear. Wherever an event is written, its
personal fields are encrypted (AES-256-GCM) under the call's own data key, and the record keeps only
the ciphertext (``"sealed"`` in the JSON value, see docs/events.md). config-api holds the data keys,
wrapped by its master keys (the key vault). Erasing a caller's data, or removing a tenant, destroys
the keys of the calls concerned, and every copy of those fields becomes unreadable at once, on every
topic, in every dead letter and in every ledger, without finding or rewriting any of them.

A reader that meets a record whose key is destroyed gets :class:`CallErased`: the buses drop such a
record (counted, never retried, never dead-lettered), so an erased call stops wherever it was.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from .bus.errors import DependencyUnavailable, TransientError
from .events import Event
from .http import raise_for_provider_status

SEALED = "sealed"
"""The member of a record's JSON value that holds the sealed personal fields."""
ALGORITHM = "A256GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
MAX_KEY_BATCH = 200
"""The most call keys created in one request to the vault (config-api enforces the same)."""


class CallErased(Exception):
    """The call's data key is destroyed (its caller's data was erased, or its tenant removed):
    the record cannot be read and is dropped, not retried and not dead-lettered.

    ``destroyed`` is False when no key was ever issued for the call (or its tombstone is gone
    with age): what was sealed cannot be opened either way."""

    def __init__(self, message: str, *, destroyed: bool = True) -> None:
        super().__init__(message)
        self.destroyed = destroyed


class UnreadableSeal(ValueError):
    """A sealed value does not open with its call's key: tampered with, or not sealed by us."""


@dataclass(frozen=True)
class CallKey:
    """One call's data key. ``key_id`` names it in sealed values; ``secret`` never leaves memory."""

    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the key material
        return f"CallKey(key_id={self.key_id!r})"


class CallKeys(Protocol):
    """Where the services get a call's data key (config-api's vault, or an in-memory fake)."""

    async def key_for_sealing(self, event: Event) -> CallKey:
        """The key to seal ``event``'s personal fields with. A producer that may start calls
        (ingress) creates it on first use; others get the existing key. Raises
        :class:`CallErased` once it is destroyed."""

    async def key_for_opening(self, tenant_id: str, call_sid: str) -> CallKey:
        """The call's key, to open what was sealed; :class:`CallErased` once it is destroyed."""

    async def erased(self, tenant_id: str, call_sid: str) -> bool:
        """Whether the call's key was destroyed (an erasure, its tenant's removal): its records
        are dropped, never dead-lettered. False for a call that never had a key."""


def _aad(tenant_id: str, call_sid: str, purpose: str) -> bytes:
    # Binds a sealed value to its call and to what it is (an event type, a ledger row): a sealed
    # value copied into another call's record, or another record type, does not open.
    return f"voiceticket/v1|{purpose}|{tenant_id}|{call_sid}".encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def seal_fields(
    key: CallKey, fields: Mapping[str, Any], *, tenant_id: str, call_sid: str, purpose: str
) -> dict[str, str]:
    """``fields`` (JSON-able) encrypted under ``key``: the ``"sealed"`` member of a record."""

    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    ciphertext = AESGCM(key.secret).encrypt(nonce, plaintext, _aad(tenant_id, call_sid, purpose))
    return {"alg": ALGORITHM, "kid": key.key_id, "nonce": _b64(nonce), "data": _b64(ciphertext)}


def open_fields(
    key: CallKey, sealed: Mapping[str, Any], *, tenant_id: str, call_sid: str, purpose: str
) -> dict[str, Any]:
    """The fields ``seal_fields`` sealed; :class:`UnreadableSeal` if they do not open."""

    if sealed.get("alg") != ALGORITHM:
        raise UnreadableSeal(f"unsupported sealing algorithm {sealed.get('alg')!r}")
    if sealed.get("kid") != key.key_id:
        raise UnreadableSeal("sealed under another key than the call's")
    try:
        nonce = base64.b64decode(str(sealed["nonce"]), validate=True)
        ciphertext = base64.b64decode(str(sealed["data"]), validate=True)
        plaintext = AESGCM(key.secret).decrypt(nonce, ciphertext, _aad(tenant_id, call_sid, purpose))
        opened = json.loads(plaintext)
    except (KeyError, binascii.Error, InvalidTag, ValueError):
        raise UnreadableSeal("sealed fields do not open with the call's key") from None
    if not isinstance(opened, dict):
        raise UnreadableSeal("sealed fields are not an object")
    return opened


class Sealer:
    """Seals and opens the personal fields of events, as JSON values (records, ledger rows)."""

    def __init__(self, keys: CallKeys) -> None:
        self.keys = keys

    async def seal(self, event: Event, *, purpose: str | None = None) -> bytes:
        """``event`` as a JSON value with its personal fields sealed (none: plain JSON)."""

        data = event.model_dump(mode="json")
        personal = {name: data.pop(name) for name in event.personal_fields() if name in data}
        if personal:
            key = await self.keys.key_for_sealing(event)
            data[SEALED] = seal_fields(
                key,
                personal,
                tenant_id=event.tenant_id,
                call_sid=event.call_sid,
                purpose=purpose or event.ce_type(),
            )
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    async def open(self, data: dict[str, Any], *, purpose: str) -> dict[str, Any]:
        """``data`` (a decoded JSON value) with its sealed fields opened, ready to validate; a
        value without ``"sealed"`` (from before sealing) is returned as it is."""

        sealed = data.pop(SEALED, None)
        if sealed is None:
            return data
        tenant_id, call_sid = data.get("tenant_id"), data.get("call_sid")
        if not isinstance(sealed, dict) or not isinstance(tenant_id, str) or not isinstance(call_sid, str):
            raise UnreadableSeal("a sealed value needs tenant_id, call_sid and an object to open")
        key = await self.keys.key_for_opening(tenant_id, call_sid)
        opened = open_fields(key, sealed, tenant_id=tenant_id, call_sid=call_sid, purpose=purpose)
        return {**data, **opened}


def new_call_key(key_id: str) -> CallKey:
    return CallKey(key_id=key_id, secret=AESGCM.generate_key(bit_length=KEY_BYTES * 8))


class MemoryCallKeys:
    """Call keys in memory: for tests and tools that hold no vault. ``erase`` destroys a key."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], CallKey] = {}
        self._erased: set[tuple[str, str]] = set()

    async def key_for_sealing(self, event: Event) -> CallKey:
        at = (event.tenant_id, event.call_sid)
        if at in self._erased:
            raise CallErased("the call's data was erased")
        if at not in self._keys:
            self._keys[at] = new_call_key(f"ck_{len(self._keys) + 1}")
        return self._keys[at]

    async def key_for_opening(self, tenant_id: str, call_sid: str) -> CallKey:
        at = (tenant_id, call_sid)
        if at in self._erased or at not in self._keys:
            raise CallErased("the call's data was erased")
        return self._keys[at]

    async def erased(self, tenant_id: str, call_sid: str) -> bool:
        return (tenant_id, call_sid) in self._erased

    def erase(self, tenant_id: str, call_sid: str) -> None:
        self._keys.pop((tenant_id, call_sid), None)
        self._erased.add((tenant_id, call_sid))


class VaultCallKeys:
    """Call keys from config-api's key vault (``/v1/runtime/calls/{CallSid}/key``).

    ``creates``: this service starts calls (ingress) and may create a call's key, sending the
    caller's number once so that config-api can find the call again for an erasure or an export
    (it keeps only a keyed hash of the number). Others only fetch existing keys. Keys are cached
    for ``cache_seconds``: an erasure reaches a running service within that time (docs); the
    question whether a call was erased, asked before a record is dead-lettered, skips the cache.

    Keys of calls that start together are created in one request (``POST /v1/runtime/call-keys``,
    one transaction for all): while one batch is on its way, the next calls wait for the next, so
    a quiet line asks for one key at a time and a burst shares the round trip and the commit.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        creates: bool = False,
        cache_seconds: float = 30.0,
        max_cached: int = 10_000,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._creates = creates
        self._ttl = cache_seconds
        self._max = max_cached
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        self._owns_client = client is None
        self._cache: OrderedDict[tuple[str, str], tuple[float, CallKey]] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[CallKey]] = {}
        self._to_create: dict[tuple[str, str], tuple[str, asyncio.Future[CallKey]]] = {}
        self._creator: asyncio.Task[None] | None = None
        self._batches = True  # until a config-api without the batch endpoint says otherwise

    async def key_for_sealing(self, event: Event) -> CallKey:
        caller = getattr(event, "caller_number", None)
        if self._creates and isinstance(caller, str) and caller:
            cached = self._cached(event.tenant_id, event.call_sid)
            if cached is not None:
                return cached
            return await self._create(event.tenant_id, event.call_sid, caller)
        return await self.key_for_opening(event.tenant_id, event.call_sid)

    async def key_for_opening(self, tenant_id: str, call_sid: str) -> CallKey:
        cached = self._cached(tenant_id, call_sid)
        if cached is not None:
            return cached
        return await self._request("GET", tenant_id, call_sid, params={"tenant_id": tenant_id})

    async def erased(self, tenant_id: str, call_sid: str) -> bool:
        # Asked before a record would be dead-lettered: the vault's answer, not the cache's.
        self.forget(tenant_id, call_sid)
        try:
            await self.key_for_opening(tenant_id, call_sid)
        except CallErased as exc:
            return exc.destroyed
        return False

    def forget(self, tenant_id: str, call_sid: str) -> None:
        """Drop a cached key (an erasure run in this process takes effect at once)."""
        self._cache.pop((tenant_id, call_sid), None)

    def _cached(self, tenant_id: str, call_sid: str) -> CallKey | None:
        entry = self._cache.get((tenant_id, call_sid))
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._cache[(tenant_id, call_sid)]
            return None
        self._cache.move_to_end((tenant_id, call_sid))
        return entry[1]

    async def _request(self, method: str, tenant_id: str, call_sid: str, **kwargs: Any) -> CallKey:
        # Single flight: the events of one call arriving together ask the vault once.
        at = (tenant_id, call_sid)
        pending = self._pending.get(at)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(method, tenant_id, call_sid, **kwargs))
            self._pending[at] = pending
            pending.add_done_callback(lambda _: self._pending.pop(at, None))
        return await asyncio.shield(pending)

    async def _create(self, tenant_id: str, call_sid: str, caller: str) -> CallKey:
        at = (tenant_id, call_sid)
        pending = self._pending.get(at)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[at] = pending
            pending.add_done_callback(lambda done: self._settled(at, done))
            self._to_create[at] = (caller, pending)
            if self._creator is None or self._creator.done():
                self._creator = asyncio.create_task(self._create_batches())
        return await asyncio.shield(pending)

    def _settled(self, at: tuple[str, str], done: asyncio.Future[CallKey]) -> None:
        self._pending.pop(at, None)
        if not done.cancelled():
            done.exception()  # retrieved here: a caller that gave up must not leave it unread

    async def _create_batches(self) -> None:
        while self._to_create:
            batch = dict(itertools.islice(self._to_create.items(), MAX_KEY_BATCH))
            for at in batch:
                del self._to_create[at]
            try:
                answers = await self._create_batch(batch)
            except asyncio.CancelledError:  # closing: nobody may wait for this batch forever
                for _, future in batch.values():
                    if not future.done():
                        future.set_exception(TransientError("the call-key client closed"))
                raise
            except Exception as exc:  # every call of the batch gets the failure (transient or not)
                answers = dict.fromkeys(batch, exc)
            for at, (_, future) in batch.items():
                answer = answers.get(at) or TransientError("config-api did not answer for a call key")
                if future.done():
                    continue
                if isinstance(answer, CallKey):
                    future.set_result(answer)
                else:
                    future.set_exception(answer)

    async def _create_batch(
        self, batch: Mapping[tuple[str, str], tuple[str, asyncio.Future[CallKey]]]
    ) -> dict[tuple[str, str], CallKey | Exception]:
        if not self._batches:
            return await self._create_one_by_one(batch)
        calls = [
            {"tenant_id": tenant_id, "call_sid": call_sid, "caller_number": caller}
            for (tenant_id, call_sid), (caller, _) in batch.items()
        ]
        try:
            response = await self._client.post(
                f"{self._base}/v1/runtime/call-keys",
                headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
                json={"calls": calls},
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"config-api unreachable for call keys: {type(exc).__name__}"
            ) from None
        if response.status_code in (404, 405):  # a config-api from before the batch endpoint
            self._batches = False
            return await self._create_one_by_one(batch)
        raise_for_provider_status(response, "config-api", "call keys")
        answers: dict[tuple[str, str], CallKey | Exception] = {}
        try:
            for item in response.json()["keys"]:
                at = (str(item["tenant_id"]), str(item["call_sid"]))
                answers[at] = self._answer(at, int(item["status"]), item)
        except (KeyError, TypeError, ValueError):
            raise TransientError("config-api sent an unusable call-key batch") from None
        return answers

    async def _create_one_by_one(
        self, batch: Mapping[tuple[str, str], tuple[str, asyncio.Future[CallKey]]]
    ) -> dict[tuple[str, str], CallKey | Exception]:
        async def one(at: tuple[str, str], caller: str) -> CallKey | Exception:
            try:
                return await self._fetch(
                    "PUT", at[0], at[1], json={"tenant_id": at[0], "caller_number": caller}
                )
            except Exception as exc:
                return exc

        ats = list(batch)
        results = await asyncio.gather(*(one(at, batch[at][0]) for at in ats))
        return dict(zip(ats, results, strict=True))

    def _answer(self, at: tuple[str, str], status: int, body: Mapping[str, Any]) -> CallKey | Exception:
        if status == 410:
            return CallErased("the call's data key is destroyed")
        if status == 404:
            return CallErased("the call's tenant is unknown or removed", destroyed=False)
        if status != 200:
            return TransientError(f"config-api answered {status} for a call key")
        return self._keep(at, body)

    def _keep(self, at: tuple[str, str], body: Mapping[str, Any]) -> CallKey:
        """The key in a vault's answer (``key_id``, base64 ``key``), cached for the call."""
        try:
            key = CallKey(key_id=str(body["key_id"]), secret=base64.b64decode(body["key"], validate=True))
        except (KeyError, TypeError, binascii.Error):
            raise TransientError("config-api sent an unusable call key") from None
        if len(key.secret) != KEY_BYTES:
            raise TransientError("config-api sent a call key of the wrong size")
        self._cache[at] = (time.monotonic() + self._ttl, key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return key

    async def _fetch(self, method: str, tenant_id: str, call_sid: str, **kwargs: Any) -> CallKey:
        try:
            response = await self._client.request(
                method,
                f"{self._base}/v1/runtime/calls/{call_sid}/key",
                headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"config-api unreachable for a call key: {type(exc).__name__}"
            ) from None
        if response.status_code == 410:
            raise CallErased("the call's data key is destroyed")
        if response.status_code == 404:
            raise CallErased(
                "no data key was issued for the call (or its tenant is removed)", destroyed=False
            )
        raise_for_provider_status(response, "config-api", "call key")
        try:
            body = response.json()
        except ValueError:
            raise TransientError("config-api sent an unusable call key") from None
        return self._keep((tenant_id, call_sid), body)

    async def aclose(self) -> None:
        if self._creator is not None and not self._creator.done():
            self._creator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._creator
        for _, future in self._to_create.values():
            if not future.done():
                future.set_exception(TransientError("the call-key client closed"))
        self._to_create.clear()
        if self._owns_client:
            await self._client.aclose()
