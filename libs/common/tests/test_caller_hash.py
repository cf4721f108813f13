"""The one keyed caller hash both services use: each service's purpose gives it its own key, and the
hashes its tables already hold (written by the per-service copies this replaced) stay the same."""

from __future__ import annotations

from pydantic import SecretStr

from voiceticket_common.caller_hash import CallerHasher
from voiceticket_jira_writer.repeat_callers import CALLER_HASH_PURPOSE as JIRA_WRITER_PURPOSE
from voiceticket_notifier.handlers import CALLER_HASH_PURPOSE as NOTIFIER_PURPOSE

KEY = SecretStr("pinned-test-key")
NUMBER = "+15005550006"

# What the per-service ``caller_hash.py`` copies gave for (KEY, "acme", NUMBER) before they were
# merged: a stored ``jira_writer_callers`` / ``notifier_opt_outs`` row must still match.
JIRA_WRITER_HASH = "962cc6e9af93c3ab56074ef121428ca46856839ca0df0ac63b4e69ac56375251"
NOTIFIER_HASH = "71e74bb10ada562c8b7af2b4d21361f6ffb15420b3aa176d29d6407702f01cfd"


def test_each_service_keeps_the_hash_its_tables_already_hold() -> None:
    assert CallerHasher(KEY, JIRA_WRITER_PURPOSE).hash("acme", NUMBER) == JIRA_WRITER_HASH
    assert CallerHasher(KEY, NOTIFIER_PURPOSE).hash("acme", NUMBER) == NOTIFIER_HASH


def test_the_number_is_trimmed_and_the_tenant_and_key_separate_hashes() -> None:
    hasher = CallerHasher(KEY, NOTIFIER_PURPOSE)
    assert hasher.hash("acme", f" {NUMBER}\n") == NOTIFIER_HASH
    assert hasher.hash("globex", NUMBER) != NOTIFIER_HASH
    assert CallerHasher(SecretStr("another-key"), NOTIFIER_PURPOSE).hash("acme", NUMBER) != NOTIFIER_HASH


def test_the_hash_does_not_contain_the_number() -> None:
    hashed = CallerHasher(KEY, JIRA_WRITER_PURPOSE).hash("acme", NUMBER)
    assert len(hashed) == 64 and NUMBER.lstrip("+") not in hashed
