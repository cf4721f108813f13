"""config-api's Alembic migrations (versions/; run by voiceticket_common.migrations)."""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData

SKIPPED = {"__main__", "migrations"}


def target_metadata() -> MetaData:
    """config-api's models as the code has them: every module of the package is imported, so a
    table declared in a new module is seen (autogenerate and the migration check compare them)."""
    import voiceticket_config_api

    from ..db import Base

    for module in pkgutil.iter_modules(voiceticket_config_api.__path__):
        if module.name not in SKIPPED:
            importlib.import_module(f"voiceticket_config_api.{module.name}")
    return Base.metadata
