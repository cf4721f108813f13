"""``voiceticket block-list add|list|remove``: a tenant's blocked callers (``/v1/tenants/{id}/blocked-callers``).

config-api keeps only a keyed hash of each number; the list shows a prefix of it (as the audit log's
``caller:<prefix>``) and the note, never the number."""

from __future__ import annotations

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
    _table,
    fail,
)

block_list_app = typer.Typer(
    help="A tenant's block list: callers whose calls are screened (blocked_caller).", no_args_is_help=True
)
Tenant = Annotated[str, typer.Argument(help="The tenant id.")]


def _print_entries(entries: list[dict[str, Any]]) -> None:
    _table(
        ["ID", "CALLER", "NOTE", "CREATED"],
        [[e["id"], f"caller:{e['subject_prefix']}", e["note"], e["created_at"]] for e in entries],
    )


@block_list_app.command("add")
def block_list_add(
    tenant: Tenant,
    phone: Annotated[str, typer.Option("--phone", help="The caller's number, E.164 (+14155550123).")],
    note: Annotated[str | None, typer.Option(help="Why (shown in the list; no personal data).")] = None,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Block a caller: their calls to the tenant's lines are screened as blocked_caller and go the
    way of each line's screening_action (no_request: rejected unanswered). Audited (block_list.add)."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        entry = _call(
            client, "POST", f"/v1/tenants/{tenant}/blocked-callers", {"number": phone, "note": note}
        )
    _emit(entry, as_json, lambda e: _print_entries([e]))


@block_list_app.command("list")
def block_list_list(
    tenant: Tenant,
    as_json: AsJson = False,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """The tenant's blocked callers: id, a prefix of the number's keyed hash, note, when."""

    with _admin(config_api_url, admin_token, data_dir) as client:
        entries = _call(client, "GET", f"/v1/tenants/{tenant}/blocked-callers")
    _emit(entries, as_json, _print_entries)


@block_list_app.command("remove")
def block_list_remove(
    tenant: Tenant,
    entry_id: Annotated[
        int | None, typer.Option("--id", min=1, help="The entry's id (from the list).")
    ] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The blocked caller's number, E.164.")] = None,
    config_api_url: ConfigUrl = DEFAULT_CONFIG_API,
    admin_token: AdminToken = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Unblock a caller, by the entry's id or by their number (exactly one). Audited (block_list.remove)."""

    if (entry_id is None) == (phone is None):
        raise fail("give exactly one of --id and --phone", 2)
    url = f"/v1/tenants/{tenant}/blocked-callers"
    with _admin(config_api_url, admin_token, data_dir) as client:
        if entry_id is not None:
            _call(client, "DELETE", f"{url}/{entry_id}")
        else:
            _call(client, "POST", f"{url}/removals", {"number": phone})
    typer.echo("unblocked", err=True)
