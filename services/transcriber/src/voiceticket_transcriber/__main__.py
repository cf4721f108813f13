"""``python -m voiceticket_transcriber``: recordings in, transcripts out."""

from __future__ import annotations

import asyncio

from voiceticket_common.service import serve_consumer

from .bootstrap import SPEC, handler_factory
from .settings import TranscriberSettings


def main() -> None:
    settings = TranscriberSettings()
    asyncio.run(serve_consumer(SPEC, settings, handler_factory(settings)))


if __name__ == "__main__":
    main()
