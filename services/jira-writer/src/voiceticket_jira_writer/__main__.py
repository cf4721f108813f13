"""``python -m voiceticket_jira_writer``: analyses in, JSM requests out."""

from __future__ import annotations

import asyncio

from voiceticket_common.service import serve_consumer

from .bootstrap import SPEC, handler_factory
from .settings import JiraWriterSettings


def main() -> None:
    settings = JiraWriterSettings()
    asyncio.run(serve_consumer(SPEC, settings, handler_factory(settings)))


if __name__ == "__main__":
    main()
