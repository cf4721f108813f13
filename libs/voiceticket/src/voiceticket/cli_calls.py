"""``voiceticket calls list|show``: each call's progress from config-api's calls view (``/v1/calls``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from .cli import (
    DEFAULT_CONFIG_API,
    DEFAULT_DATA_DIR,
    AdminToken,
    AsJson,
    ConfigUrl,
    DataDir,
    _admin,
    _call,
    _emit,
    _fields,
    _table,
    fail,
)

calls_app = typer.Typer(
    help="Calls: each call's progress (received, transcribed, analysed, request, SMS) and its dead letters.",
    no_args_is_help=True,
)
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
MARKS = {"done": "+", "pending": ".", "failed": "x", "skipped": "-"}


def progress(call: dict[str, Any]) -> str:
    """The stages in one word each: ``received+ transcribed+ analyzed+ requestx sms.`` (+ done,
    . pending, x failed, - skipped)."""
    return " ".join(f"{s['name']}{MARKS.get(s['state'], '?')}" for s in call.get("stages", []))


def _print_calls(page: dict[str, Any]) -> None:
    rows = [[c["call_sid"], c["tenant_id"], c["received_at"], progress(c), c["request_key"], c["triage"],
             c.get("screened"), c["error"] and c["error"][:60]] for c in page["calls"]]  # fmt: skip
    _table(["CALL", "TENANT", "RECEIVED", "PROGRESS", "REQUEST", "TRIAGE", "SCREENED", "ERROR"], rows)
    if page.get("next"):
        typer.echo(f"more: --before {page['next']}", err=True)


def _print_call(call: dict[str, Any]) -> None:
    shown = {k: v for k, v in call.items() if k not in ("stages", "dead_letters") and v is not None}
    if not shown.get("screened_out"):
        shown.pop("screened_out", None)  # said only when screening ended the call
    _fields(shown)
    typer.echo("")
    _table(
        ["STAGE", "STATE", "AT", "DETAIL"],
        [[s["name"], s["state"], s["at"], s["detail"]] for s in call["stages"]],
    )
    if call["dead_letters"]:
        typer.echo("")
        rows = [[d["id"], d["group"], d["event_type"], d["at"], d["replayed_at"], d["reason"][:80]]
                for d in call["dead_letters"]]  # fmt: skip
        _table(["DEAD LETTER", "GROUP", "EVENT", "AT", "REPLAYED", "REASON"], rows)


@calls_app.command("list")
def calls_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's calls.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many calls (newest first).")] = 50,
    before: Annotated[
        str | None, typer.Option(help="The next page: the cursor the previous page printed.")
    ] = None,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """List calls, newest first: each stage done (+), pending (.), failed (x) or skipped (-), the
    request key, triage and the last error (--json: the API's page, with its next cursor)."""

    params: dict[str, Any] = {"limit": limit}
    if tenant:
        params["tenant_id"] = tenant
    if before:
        params["before"] = before
    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", "/v1/calls", params=params, what="the listing"), as_json, _print_calls)


@calls_app.command("show")
def calls_show(
    call_sid: Annotated[str, typer.Argument(help="The call's Twilio CallSid (CA...).")],
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show one call: every stage with its time and detail, triage, errors and dead letters
    (replay one with the admin page or `voiceticket dead-letters replay`)."""

    if not CALL_SID.match(call_sid):
        raise fail(f"{call_sid!r} is not a CallSid (CA followed by 32 hex digits)", 2)
    with _admin(config_api_url, admin_token, data_dir) as client:
        _emit(_call(client, "GET", f"/v1/calls/{call_sid}"), as_json, _print_call)
