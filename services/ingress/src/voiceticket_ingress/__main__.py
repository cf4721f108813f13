"""``python -m voiceticket_ingress``: serve Twilio's webhooks."""

from __future__ import annotations

import uvicorn

from voiceticket_common.logging import setup_logging
from voiceticket_common.tracing import setup_tracing

from .app import create_app
from .settings import IngressSettings


def main() -> None:
    settings = IngressSettings()
    setup_logging("ingress", settings.log_level)
    setup_tracing("ingress")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,  # URLs carry sealed call context and trace ids; the app logs what matters
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
