"""``python -m voiceticket_ingress``: serve Twilio's webhooks."""

from __future__ import annotations

import asyncio

from voiceticket_common.service import serve_web

from .bootstrap import SERVICE


def main() -> None:
    asyncio.run(serve_web(SERVICE))


if __name__ == "__main__":
    main()
