"""Control endpoints every stand-in has: recorded requests, reset and fault injection.

All live under ``/_sandbox/``; they are neither validated nor recorded.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from voiceticket_sandbox.state import Fault, SandboxState


class FaultSpec(BaseModel):
    """Body of ``POST /_sandbox/faults``."""

    method: str = "*"
    path_regex: str = ".*"
    status: int | None = Field(default=None, description="None: only delay, then answer normally")
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    delay_seconds: float = 0.0
    times: int | None = Field(default=1, description="None: until DELETE /_sandbox/faults")
    reset: bool = Field(
        default=False,
        description="answer nothing: reset the connection (TCP RST) after the delay; status is ignored",
    )

    @field_validator("path_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value


def control_router(state: SandboxState, service: str) -> APIRouter:
    """The common ``/_sandbox/`` routes of one stand-in (records and faults are per service)."""
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    @router.get("/requests")
    async def recorded_requests() -> list[dict[str, Any]]:
        return state.records_of(service)

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        state.clear_records(service)
        return {"status": "ok"}

    @router.post("/faults", status_code=201)
    async def add_fault(spec: FaultSpec) -> dict[str, Any]:
        fault = Fault(service=service, **spec.model_dump())
        state.faults.append(fault)
        return fault.describe()

    @router.get("/faults")
    async def list_faults() -> list[dict[str, Any]]:
        return [f.describe() for f in state.faults if f.service == service]

    @router.delete("/faults")
    async def delete_faults() -> dict[str, str]:
        state.faults[:] = [f for f in state.faults if f.service != service]
        return {"status": "ok"}

    return router
