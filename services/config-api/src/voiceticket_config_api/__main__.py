"""``python -m voiceticket_config_api``: serve on CONFIG_API_HOST:CONFIG_API_PORT."""

from __future__ import annotations

import logging

import uvicorn

from voiceticket_common.logging import setup_logging

from .app import create_app
from .settings import Settings


def main() -> None:
    settings = Settings()
    # The same JSON log lines (with trace and span ids) as every other service.
    setup_logging("config-api", settings.log_level)
    # Driver debug logs print SQL parameters (phone numbers, ciphertexts): keep them quiet.
    for noisy in ("aiosqlite", "asyncpg", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    # uvicorn's access log prints raw paths (phone numbers); the app logs route templates instead.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
