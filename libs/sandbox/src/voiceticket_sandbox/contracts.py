"""Validate requests against the vendored OpenAPI specs (see ``contracts/SOURCES.md``).

Each spec is loaded once per process, lazily and thread-safely; ``preload_specs()`` loads them all up
front. The files stay byte-for-byte as published; what openapi-core 0.23 needs is done in memory:

- built with ``Config(spec_validator_cls=None)``: the JSM spec has duplicate operation ids, which the
  strict spec check refuses;
- every ``discriminator`` is removed from the OpenAI spec: its mappings name schemas that do not
  exist, so valid chat requests would fail;
- multipart parts arrive as bytes; text parts are decoded, and file parts are handed over as a
  latin-1 string, because the OpenAPI 3.1 validator has no bytes type for ``format: binary``;
- the JSM spec lists only OAuth2 even where Atlassian documents basic auth, so for OAuth2
  requirements any ``Authorization`` header passes here; the sandbox app checks the credentials;
- requests are validated, never unmarshalled: unmarshalling fills spec defaults such as
  ``stop: null`` into the chat request and then rejects its own defaults.

Two checks go beyond openapi-core:

- form bodies (urlencoded and multipart) may carry only fields the spec names; openapi-core drops
  unknown form fields silently, and Twilio's form schemas do not set ``additionalProperties``. A
  misspelt Twilio parameter is therefore an error here, which is stricter than Twilio itself;
- a multipart body whose spec schema is not an object (JSM ``attachTemporaryFile`` describes the Java
  ``MultipartFile`` class rather than the form) is checked for at least one ``file`` part instead.

Twilio recording media (``GET .../Recordings/{Sid}`` with no extension, ``.wav`` or ``.mp3``) is not
in the Twilio spec, which has only ``{Sid}.json``; for those URLs only the HTTP basic auth header and
the SID formats are checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema.exceptions import best_match
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.validation.request.exceptions import (
    InvalidRequestBody,
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from werkzeug.datastructures import Headers, ImmutableMultiDict

from voiceticket_sandbox.forms import media_type, parse_multipart, parse_urlencoded

TWILIO = "twilio"
OPENAI = "openai"
JIRA_PLATFORM = "jira-platform"
JSM = "jsm"
JIRA = "jira"  # routes to JSM or the platform spec by path

SPEC_FILES = {
    TWILIO: "twilio_api_v2010.json",
    OPENAI: "openai-openapi.yaml",
    JIRA_PLATFORM: "jira-platform-swagger-v3.v3.json",
    JSM: "jsm-servicedesk-swagger.v3.json",
}

SECURITY_ERROR_PREFIX = "security: "
_MAX_MESSAGE = 300
_TWILIO_MEDIA = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>[^/.]+)(?:\.(?:wav|mp3))?$"
)
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class LoadedSpec:
    """A parsed spec, its openapi-core object and where its server lives."""

    name: str
    document: dict[str, Any]
    openapi: OpenAPI
    host_url: str
    base_path: str
    operations: list[tuple[re.Pattern[str], dict[str, Any]]]


class _AnyAuthorizationProvider(BaseProvider):
    def __call__(self, parameters: Any) -> Any:
        if "Authorization" not in parameters.header:
            raise SecurityProviderError("Missing authorization header.")
        return parameters.header["Authorization"]


class _SandboxSecurityProviders(SecurityProviderFactory):
    PROVIDERS = {**SecurityProviderFactory.PROVIDERS, "oauth2": _AnyAuthorizationProvider}


class _FormFields(dict[str, Any]):
    """Decoded multipart fields; ``getall`` is what openapi-core uses for array properties."""

    def __init__(self, pairs: Iterable[tuple[str, Any]]) -> None:
        super().__init__()
        self._all: dict[str, list[Any]] = {}
        for name, value in pairs:
            key = _field_name(name)
            self._all.setdefault(key, []).append(value)
            self.setdefault(key, value)

    def getall(self, name: str) -> list[Any]:
        # KeyError makes openapi-core skip an absent array instead of validating [] against minItems
        return self._all[name]


# Declared JSON types of the multipart fields being validated; openapi-core leaves every text part
# a string, so "0" would fail `temperature: number` unless cast by the spec's own type.
_multipart_types: ContextVar[dict[str, set[str]] | None] = ContextVar("multipart_types", default=None)


def _multipart_loads(value: bytes, **parameters: str) -> _FormFields:
    content_type = "multipart/form-data; " + "; ".join(f'{k}="{v}"' for k, v in parameters.items())
    types = _multipart_types.get() or {}
    pairs = []
    for part in parse_multipart(value, content_type):
        if part.is_file:
            pairs.append((part.name, part.data.decode("latin-1")))
        else:
            text = part.data.decode("utf-8", errors="replace")
            pairs.append((part.name, _cast(text, types.get(_field_name(part.name), set()))))
    return _FormFields(pairs)


def _cast(text: str, types: set[str]) -> Any:
    if "string" in types or not types:
        return text
    try:
        if "integer" in types and re.fullmatch(r"-?\d+", text):
            return int(text)
        if "number" in types:
            return float(text)
    except ValueError:
        return text
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    return text


def _field_name(name: str) -> str:
    """`timestamp_granularities[]` and `chunking_strategy[type]` belong to their base field."""
    return name.split("[", 1)[0]


_lock = threading.Lock()
_loaded: dict[str, LoadedSpec] = {}


def load_spec(name: str) -> LoadedSpec:
    """The named spec (``twilio``, ``openai``, ``jira-platform`` or ``jsm``), loaded once."""
    if name not in SPEC_FILES:
        raise KeyError(f"unknown spec {name!r}; known: {sorted(SPEC_FILES)}")
    with _lock:
        if name not in _loaded:
            _loaded[name] = _build(name)
        return _loaded[name]


def preload_specs() -> None:
    """Load every spec now (the OpenAI YAML alone takes seconds)."""
    for name in SPEC_FILES:
        load_spec(name)


def spec_path(name: str) -> Any:
    """The vendored file of a spec, as an importlib.resources Traversable."""
    return resources.files("voiceticket_sandbox").joinpath("contracts", SPEC_FILES[name])


def _build(name: str) -> LoadedSpec:
    raw = spec_path(name).read_bytes()
    if SPEC_FILES[name].endswith(".yaml"):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(raw, Loader=loader)  # noqa: S506 - SafeLoader family only
    else:
        document = json.loads(raw)
    if name == OPENAI:
        _strip_discriminators(document)
    config = Config(
        # None skips validating the (vendored, trusted) spec: openapi-core documents and handles it
        # (OpenAPI.check_spec) but annotates the field as `type[SpecValidator] | Unset` only.
        spec_validator_cls=None,  # type: ignore[arg-type]
        extra_media_type_deserializers={"multipart/form-data": _multipart_loads},
        security_provider_factory=_SandboxSecurityProviders(),
    )
    server = urlsplit(document["servers"][0]["url"])
    return LoadedSpec(
        name=name,
        document=document,
        openapi=OpenAPI.from_dict(document, config=config),
        host_url=f"{server.scheme}://{server.netloc}",
        base_path=server.path.rstrip("/"),
        operations=_path_table(document),
    )


def _strip_discriminators(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("discriminator", None)
        for child in node.values():
            _strip_discriminators(child)
    elif isinstance(node, list):
        for child in node:
            _strip_discriminators(child)


def _path_table(document: dict[str, Any]) -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    table = []
    for template, item in document["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        table.append((re.compile(f"^{pattern}$"), item, template.count("{")))
    # concrete paths win over templated ones, as in openapi-core's path finder
    table.sort(key=lambda row: row[2])
    return [(pattern, item) for pattern, item, _ in table]


@dataclass
class _Request:
    """The request shape openapi-core's validators read."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: Any


def validate_request(
    spec_name: str,
    method: str,
    url_path: str,
    query: Mapping[str, str | list[str]] | Iterable[tuple[str, str]] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    content_type: str | None,
    body_bytes: bytes | None,
) -> list[str]:
    """Check one request against a spec; an empty list means valid.

    ``spec_name`` is ``twilio``, ``openai``, ``jira-platform``, ``jsm`` or ``jira`` (JSM for
    ``/rest/servicedeskapi/...``, the platform spec otherwise). ``url_path`` is the path as served by
    the sandbox, which is the provider's path (``/v1/...`` for OpenAI). Security errors start with
    ``"security: "`` so callers can answer them 401 rather than 400.
    """
    if spec_name == JIRA:
        spec_name = JSM if url_path.startswith("/rest/servicedeskapi/") else JIRA_PLATFORM
    header_map = Headers(list(headers.items()) if isinstance(headers, Mapping) else headers or [])
    if spec_name == TWILIO and method.upper() == "GET" and _TWILIO_MEDIA.match(url_path):
        return _check_twilio_media(url_path, header_map)
    spec = load_spec(spec_name)
    query_map = ImmutableMultiDict(_pairs(query))
    request = _Request(
        host_url=spec.host_url,
        path=url_path,
        method=method.lower(),
        body=body_bytes or None,
        content_type=content_type or "application/octet-stream",
        parameters=RequestParameters(query=query_map, header=header_map, cookie=ImmutableMultiDict()),
    )
    operation = _find_operation(spec, method, url_path)
    body_schema = _body_schema(spec, operation, content_type)
    form_is_object = body_schema is None or _schema_type(spec, body_schema) in ("object", None)
    errors: list[str] = []
    types_token = _multipart_types.set(_property_types(spec, body_schema) if body_schema else {})
    try:
        for error in spec.openapi.iter_request_errors(request):
            if isinstance(error, RequestBodyValidationError) and not form_is_object:
                continue
            errors.extend(_describe(error))
    finally:
        _multipart_types.reset(types_token)
    if body_schema is not None and body_bytes and not errors:
        errors.extend(_form_field_errors(spec, body_schema, content_type or "", body_bytes))
    return errors


def _pairs(
    items: Mapping[str, str | list[str]] | Iterable[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    if items is None:
        return []
    if not isinstance(items, Mapping):
        return list(items)
    pairs: list[tuple[str, str]] = []
    for key, value in items.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((key, v) for v in values)
    return pairs


def _check_twilio_media(url_path: str, headers: Headers) -> list[str]:
    match = _TWILIO_MEDIA.match(url_path)
    assert match is not None
    errors = []
    if not _ACCOUNT_SID.match(match["account"]):
        errors.append("path parameter AccountSid: does not match ^AC[0-9a-fA-F]{32}$")
    if not _RECORDING_SID.match(match["sid"]):
        errors.append("path parameter Sid: does not match ^RE[0-9a-fA-F]{32}$")
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    try:
        user, sep, _ = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep = "", ""
    if scheme.lower() != "basic" or not sep or not user:
        errors.insert(0, SECURITY_ERROR_PREFIX + "HTTP basic auth (AccountSid:AuthToken) required")
    return errors


def _find_operation(spec: LoadedSpec, method: str, url_path: str) -> dict[str, Any] | None:
    if spec.base_path and url_path.startswith(spec.base_path + "/"):
        url_path = url_path[len(spec.base_path) :]
    for pattern, item in spec.operations:
        if pattern.match(url_path):
            operation: dict[str, Any] | None = item.get(method.lower())
            if operation is not None:
                return operation
    return None


def _resolve(spec: LoadedSpec, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec.document
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _body_schema(
    spec: LoadedSpec, operation: dict[str, Any] | None, content_type: str | None
) -> dict[str, Any] | None:
    """The request schema of a form operation (urlencoded or multipart), else None."""
    mime = media_type(content_type)
    if operation is None or mime not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    body = _resolve(spec, operation.get("requestBody", {}))
    media = body.get("content", {}).get(mime)
    return _resolve(spec, media.get("schema")) if media else None


def _schema_type(spec: LoadedSpec, schema: dict[str, Any]) -> str | None:
    declared = _resolve(spec, schema).get("type")
    return declared if isinstance(declared, str) else None


def _property_names(spec: LoadedSpec, schema: Any) -> set[str]:
    schema = _resolve(spec, schema)
    names = set(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            names |= _property_names(spec, sub)
    return names


def _property_types(spec: LoadedSpec, schema: Any) -> dict[str, set[str]]:
    schema = _resolve(spec, schema)
    types: dict[str, set[str]] = {}
    for name, prop in schema.get("properties", {}).items():
        types[name] = _declared_types(spec, prop)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            for name, found in _property_types(spec, sub).items():
                types.setdefault(name, set()).update(found)
    return types


def _declared_types(spec: LoadedSpec, schema: Any) -> set[str]:
    schema = _resolve(spec, schema)
    declared = schema.get("type")
    found = {declared} if isinstance(declared, str) else set(declared or [])
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found |= _declared_types(spec, sub)
    return found


def _form_field_errors(spec: LoadedSpec, schema: dict[str, Any], content_type: str, body: bytes) -> list[str]:
    try:
        if media_type(content_type) == "multipart/form-data":
            parts = parse_multipart(body, content_type)
            names = [p.name for p in parts]
            file_names = [p.name for p in parts if p.is_file]
        else:
            names = [name for name, _ in parse_urlencoded(body)]
            file_names = []
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"body: cannot parse form body: {exc}"]
    if _schema_type(spec, schema) not in ("object", None):
        return [] if "file" in file_names else ["body: a multipart part named 'file' is required"]
    known = _property_names(spec, schema)
    unknown = sorted({n for n in names if _field_name(n) not in known})
    return [f"body: unknown form field {name!r}" for name in unknown]


def _describe(error: Exception) -> list[str]:
    if isinstance(error, SecurityValidationError):
        return [SECURITY_ERROR_PREFIX + _short(str(error))]
    if isinstance(error, PathError):
        return [f"not in the spec: {_short(str(error))}"]
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if isinstance(error, InvalidRequestBody) and schema_errors:
        return [_schema_error("body", e) for e in schema_errors]
    if isinstance(error, ParameterValidationError):
        where = f"{error.location} parameter {error.name!r}"
        if schema_errors:
            return [_schema_error(where, e) for e in schema_errors]
        return [f"{where}: {_short(str(cause or error))}"]
    return [_short(f"{type(error).__name__}: {cause or error}")]


def _schema_error(where: str, error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    text = f"{where} /{path}: " if path else f"{where}: "
    text += _short(error.message)
    if error.context:
        text += f" ({_closest(error)})"
    return text


def _closest(error: Any) -> str:
    """Name the value that picked no anyOf/oneOf branch, e.g. a chat message's bad ``role``."""
    allowed: dict[tuple[Any, ...], list[Any]] = {}
    pending = list(error.context)
    while pending:
        sub = pending.pop()
        pending.extend(sub.context or [])
        if sub.validator in ("enum", "const"):
            values = sub.validator_value if sub.validator == "enum" else [sub.validator_value]
            allowed.setdefault(tuple(sub.absolute_path), []).extend(values)
    if allowed:
        path = max(allowed, key=len)
        values = ", ".join(sorted({repr(v) for v in allowed[path]}))
        where = "/".join(str(p) for p in path)
        return f"/{where}: {_short(f'expected one of {values}')}"
    closest = best_match(error.context)
    where = "/".join(str(p) for p in closest.absolute_path)
    return f"closest match: /{where}: {_short(closest.message)}"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
