"""``python -m voiceticket_jira_writer``: analyses in, JSM requests out; ``... purge [--dry-run]``:
the retention purge (recordings due at Twilio, old ledger rows), once."""

from __future__ import annotations

from voiceticket_common import service

from .bootstrap import SERVICE


def main() -> None:
    service.main(SERVICE)


if __name__ == "__main__":
    main()
