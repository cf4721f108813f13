"""``python -m voiceticket_notifier``: tickets in, SMS out."""

from __future__ import annotations

import asyncio

from voiceticket_common.service import serve_consumer

from .bootstrap import SERVICE


def main() -> None:
    asyncio.run(serve_consumer(SERVICE))


if __name__ == "__main__":
    main()
