"""Composition root: ingress described once (settings, what it publishes, the app on a publisher)."""

from __future__ import annotations

from voiceticket_common.service import WebService

from .app import PUBLISHED, create_app
from .settings import IngressSettings

SERVICE = WebService(name="ingress", settings=IngressSettings, produces=PUBLISHED, app=create_app)
