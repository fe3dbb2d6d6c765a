"""`multipart/form-data` bodies, both ways: what an OpenAI SDK sends to upload a file
(`client.files.create`) read into its fields, and the same form made to relay it.

Parsed with the standard library's MIME parser (the `email` package, RFC 7578 forms are
MIME multiparts); only what a form upload needs is kept: each part's name, its file name
when it is a file, and its bytes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

from tollhouse.errors import BadRequest


@dataclass(frozen=True, slots=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None  # set when the part is a file


def parse_form(content_type: str, body: bytes) -> dict[str, FormPart]:
    """The parts of a `multipart/form-data` body by name (the last one of a repeated
    name); `BadRequest` when `content_type` is not a form with a boundary or the body is
    not one."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in (
        content_type.lower()
    ):
        raise BadRequest(
            f"content-type {content_type!r}: expected multipart/form-data with a boundary"
        )
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("the multipart/form-data body has no parts")
    parts: dict[str, FormPart] = {}
    payload = message.get_payload()
    assert isinstance(payload, list)
    for part in payload:
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise BadRequest("a part of the multipart/form-data body has no name")
        data = part.get_payload(decode=True)
        filename = part.get_param("filename", header="content-disposition")
        parts[name] = FormPart(
            name,
            data if isinstance(data, bytes) else b"",
            filename if isinstance(filename, str) else None,
        )
    if not parts:
        raise BadRequest("the multipart/form-data body has no parts")
    return parts


def encode_form(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    """A `multipart/form-data` body of `fields` (name → text) and `files` (name →
    (file name, bytes)): its content type and its bytes."""
    boundary = "tollhouse-" + secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, data) in files.items():
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
        chunks.append(
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{name}"; filename="{safe}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)
