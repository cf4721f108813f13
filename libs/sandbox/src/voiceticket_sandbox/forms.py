"""Parse form bodies (urlencoded and multipart) from raw bytes.

The recorder and the spec validator both need the fields of a request body before FastAPI has
parsed it, so they share these stdlib-only parsers.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.parser import BytesParser
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def is_file(self) -> bool:
        return self.filename is not None


def parse_multipart(body: bytes, content_type: str) -> list[FormPart]:
    """Split a multipart/form-data body into its parts; raises ValueError if it is not one."""
    header = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ValueError("body is not multipart")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("multipart part without a name")
        payload = part.get_payload(decode=True)
        parts.append(
            FormPart(
                name=name,
                filename=part.get_filename(),
                content_type=part.get_content_type(),
                data=payload if isinstance(payload, bytes) else b"",
            )
        )
    return parts


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """Decode an application/x-www-form-urlencoded body (UTF-8, blank values kept)."""
    return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)


def media_type(content_type: str | None) -> str:
    """The bare, lower-case media type of a Content-Type header value."""
    return (content_type or "").split(";", 1)[0].strip().lower()
