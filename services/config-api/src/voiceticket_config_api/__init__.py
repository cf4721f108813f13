"""voiceticket config-api: tenants, lines and credentials; admin and runtime APIs."""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
