"""Failpoints for the chaos suite, loaded into every product process it starts (this folder is
on their ``PYTHONPATH``; nothing of it ships with the product).

* **hold-commit**: while ``$CHAOS_FAILPOINTS_DIR/hold-commit.<pid>`` exists, this process's Kafka
  group member holds its offset commits: records whose handler succeeded (outcome published)
  wait uncommitted. The member writes ``holding.<pid>`` when a commit is held, so the harness
  can SIGKILL it in exactly that window: between the handler's success and the commit.
* **upgraded producer**: with ``CHAOS_UPGRADED=1`` in its environment, the process is "the new
  version" of a rolling upgrade, whose events carry an optional field the old consumers do not
  know (``chaos_upgrade``, in clear next to the event's fields). Old consumers must ignore it.

Without ``CHAOS_FAILPOINTS_DIR`` this module does nothing.
"""

from __future__ import annotations

import os

UPGRADE_FIELD = "chaos_upgrade"
UPGRADE_VALUE = "v1.1: an optional field old consumers do not know"


def _install() -> None:
    folder = os.environ.get("CHAOS_FAILPOINTS_DIR")
    if not folder:
        return
    try:
        from voiceticket_common.bus import envelope, kafka_member
    except ImportError:  # not a product process (the stand-ins)
        return
    _hold_commits(folder, kafka_member)
    if os.environ.get("CHAOS_UPGRADED") == "1":
        _add_upgrade_field(envelope)


def _hold_commits(folder: str, kafka_member: object) -> None:
    import asyncio
    from pathlib import Path

    member = kafka_member.KafkaGroupMember  # type: ignore[attr-defined]
    commit = member._commit
    hold = Path(folder) / f"hold-commit.{os.getpid()}"
    holding = Path(folder) / f"holding.{os.getpid()}"

    async def held_commit(self: object, partitions: object) -> None:
        if hold.exists():
            holding.touch()
            for _ in range(600):  # at most 60 s: the harness kills this process long before
                if not hold.exists():
                    break
                await asyncio.sleep(0.1)
        await commit(self, partitions)

    member._commit = held_commit


def _add_upgrade_field(envelope: object) -> None:
    import json

    seal_record = envelope.seal_record  # type: ignore[attr-defined]

    async def upgraded(env: object, sealer: object) -> tuple[bytes, bytes, object]:
        key, value, headers = await seal_record(env, sealer)
        data = json.loads(value)
        if isinstance(data, dict):
            data[UPGRADE_FIELD] = UPGRADE_VALUE
            value = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return key, value, headers

    envelope.seal_record = upgraded  # type: ignore[attr-defined]


_install()
