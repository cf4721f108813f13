"""The sealed call context of callback URLs: round trip, what is left out, tampering, expiry."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from voiceticket_common.call_context import CallContext, CallContextSealer, InvalidCallContext

KEY = SecretStr(Fernet.generate_key().decode())


def test_round_trip_and_only_what_is_set_is_sealed() -> None:
    sealer = CallContextSealer(KEY)
    recording = CallContext("acme", "+15005550006", "+14155550100")
    message = CallContext("acme", "+15005550006", call_sid="CA" + "1" * 32)
    assert sealer.open(sealer.seal(recording)) == recording
    assert sealer.open(sealer.seal(message)) == message
    plain = json.loads(Fernet(KEY.get_secret_value().encode()).decrypt(sealer.seal(message).encode()))
    assert set(plain) == {"t", "l", "s"}, "no caller number where none is needed"


def test_contexts_sealed_before_call_sid_existed_still_open() -> None:
    token = Fernet(KEY.get_secret_value().encode()).encrypt(b'{"t": "acme", "l": "+1500", "c": "+1415"}')
    assert CallContextSealer(KEY).open(token.decode()) == CallContext("acme", "+1500", "+1415", "")


@pytest.mark.parametrize("token", ["", "garbage", "gAAAA" + "x" * 80])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidCallContext):
        CallContextSealer(KEY).open(token)


def test_another_key_or_an_old_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    token = CallContextSealer(KEY).seal(CallContext("acme", "+15005550006"))
    with pytest.raises(InvalidCallContext):
        CallContextSealer(SecretStr(Fernet.generate_key().decode())).open(token)
    monkeypatch.setattr("voiceticket_common.call_context.MAX_AGE_SECONDS", -1)
    with pytest.raises(InvalidCallContext):
        CallContextSealer(KEY).open(token)


def test_the_ivr_choice_round_trips_and_an_odd_one_is_refused() -> None:
    from voiceticket_common.events.v1 import IvrChoice

    sealer = CallContextSealer(KEY)
    chosen = CallContext(
        "acme", "+15005550006", ivr_choice=IvrChoice(digit="2", label="Billing", input="dtmf")
    )
    assert sealer.open(sealer.seal(chosen)) == chosen
    odd = Fernet(KEY.get_secret_value().encode()).encrypt(b'{"t": "acme", "l": "+1500", "m": {"digit": 2}}')
    with pytest.raises(InvalidCallContext):
        sealer.open(odd.decode())
