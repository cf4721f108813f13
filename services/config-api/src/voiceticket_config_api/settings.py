"""Settings for config-api (env prefix ``CONFIG_API_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("ingress", "transcriber", "analyzer", "jira-writer", "notifier")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONFIG_API_", extra="ignore")

    env: Literal["development", "test", "production"] = "production"
    database_url: str = "sqlite+aiosqlite:///./config-api.db"
    # "kid:base64key,kid:base64key" - the first one encrypts, all of them decrypt.
    master_keys: SecretStr | None = None
    admin_token: SecretStr | None = None
    # "role:token,role:token" - a role may appear more than once (token rotation).
    service_tokens: SecretStr | None = None
    seed_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8085
    log_level: str = "INFO"


def parse_service_tokens(spec: SecretStr | None) -> list[tuple[str, bytes]]:
    """Parse ``role:token,...`` into (role, token bytes). Errors never echo a token."""
    out: list[tuple[str, bytes]] = []
    if spec is None:
        return out
    for i, item in enumerate(x.strip() for x in spec.get_secret_value().split(",")):
        if not item:
            continue
        role, sep, token = item.partition(":")
        role = role.strip()
        if not sep or not token.strip():
            raise ValueError(f"CONFIG_API_SERVICE_TOKENS entry #{i + 1} is not 'role:token'")
        if role not in ROLES:
            raise ValueError(
                f"CONFIG_API_SERVICE_TOKENS entry #{i + 1}: unknown role {role!r} "
                f"(expected one of {', '.join(ROLES)})"
            )
        out.append((role, token.strip().encode()))
    tokens = [t for _, t in out]
    if len(set(tokens)) != len(tokens):
        raise ValueError("CONFIG_API_SERVICE_TOKENS: the same token is given more than once")
    return out
