"""One gateway key as the keys port keeps it: who holds it, what it may do, how it is checked.

The secret itself is never kept: a key is stored as the SHA-256 of its secret, and the
plaintext exists only in the answer to `create` or `rotate`, shown once.

Why SHA-256 and not bcrypt/argon2: those are slow on purpose, to make guessing a
*human-chosen* password expensive after a database leak. Our secrets are 32 random bytes
(256 bits of entropy), so there is nothing to guess: even a fast hash can't be inverted by
brute force, and a salt buys nothing either (no two keys share a secret, no precomputed
table covers 2^256 inputs). A slow hash would instead cost tens of milliseconds of CPU on
every cache miss of the request path, and would hand anyone who can send random keys a
cheap way to burn our CPU. A fast unsalted hash is also what lets `find_by_secret` be one
lookup in a unique index.

`KeySpec` is everything an operator sets on a key (the admin API's create body, the CLI's
flags); `KeyRecord` is a spec plus what the gateway assigns (id, hashes, timestamps). The
pure functions at the end (`mint`, `rotated`, `revoked`, `updated`) are the only way a
record changes, so both stores change records the same way.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from tollhouse.config.model import Budget, InputLimits, Limits

SECRET_PREFIX = "th-"
DISPLAY_PREFIX_LENGTH = len(SECRET_PREFIX) + 5  # "th-AbCdE": 30 of 256 bits, harmless to show

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
KeyStatus = Literal["active", "revoked", "expired"]
# What a key may do beyond calling models: `variant_override`, name the variant of a route
# that serves its call (`x-tollhouse-variant`, stages/route/variant_split.py); `batches`,
# create and read Message Batches and their files (src/tollhouse/batches/).
KeyScope = Literal["variant_override", "batches"]


class KeySpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an operator decides about a key. `allowed_models` holds model names or
    `fnmatch` globs (`claude-*`); empty allows every model. With `end_users`, the key may
    name its own end users in requests, each held to `end_user_limits`/`end_user_budget`
    on top of the key's own. `scopes` grants what a key may do beyond calling models
    (`KeyScope`)."""

    name: Name
    user: str | None = None
    team: str | None = None
    project: str | None = None
    allowed_models: tuple[str, ...] = ()
    limits: Limits = msgspec.field(default_factory=Limits)
    budget: Budget = msgspec.field(default_factory=Budget)
    end_users: bool = False
    end_user_limits: Limits = msgspec.field(default_factory=Limits)
    end_user_budget: Budget = msgspec.field(default_factory=Budget)
    caps: InputLimits = msgspec.field(default_factory=InputLimits)
    scopes: tuple[KeyScope, ...] = ()
    expires_at: AwareDatetime | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


UPDATABLE: frozenset[str] = frozenset(KeySpec.__struct_fields__)
"""The fields `KeyStore.update` may change: the spec, never the id, hashes or timestamps."""


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored key. `key_id` is public (logs, ledger, reports); `prefix` is the start of
    the secret, for a human to tell keys apart. After a rotation, `previous_secret_hash`
    is the replaced secret, accepted until `previous_secret_valid_until`; `rotated_from`
    is its prefix. Times are timezone-aware UTC."""

    key_id: str
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    user: str | None = None
    team: str | None = None
    project: str | None = None
    allowed_models: tuple[str, ...] = ()
    limits: Limits = msgspec.field(default_factory=Limits)
    budget: Budget = msgspec.field(default_factory=Budget)
    end_users: bool = False
    end_user_limits: Limits = msgspec.field(default_factory=Limits)
    end_user_budget: Budget = msgspec.field(default_factory=Budget)
    caps: InputLimits = msgspec.field(default_factory=InputLimits)
    scopes: tuple[KeyScope, ...] = ()
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rotated_from: str | None = None
    previous_secret_hash: str | None = None
    previous_secret_valid_until: datetime | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def refusal(self, secret_hash: str, now: datetime) -> str | None:
        """Why a request presenting the secret whose hash is `secret_hash` is refused, in
        words fit for the client (naming the key id, never the secret); None if accepted."""
        status = self.status(now)
        if status != "active":
            return f"API key {self.key_id} is {status}"
        if _same_hash(secret_hash, self.secret_hash):
            return None
        if self.previous_secret_hash is not None and _same_hash(
            secret_hash, self.previous_secret_hash
        ):
            until = self.previous_secret_valid_until
            if until is not None and now < until:
                return None
            return f"API key {self.key_id} was rotated: this secret is no longer valid"
        return "invalid API key"

    def accepted_until(self, secret_hash: str) -> datetime | None:
        """Until when the secret whose hash is `secret_hash`, accepted now, stays accepted
        by the clock (the key's expiry, a replaced secret's grace period); None: no end."""
        ends = [self.expires_at]
        if not _same_hash(secret_hash, self.secret_hash):
            ends.append(self.previous_secret_valid_until)
        return min((end for end in ends if end is not None), default=None)


def _same_hash(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def new_secret() -> str:
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_PREFIX_LENGTH]


def public_view(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """The record as the admin API and the CLI show it: every field but the hashes (a hash
    of a high-entropy secret can't be reversed, but it is still a lookup key into the
    table: it stays in the database), plus the status at `now`. JSON-shaped: lists, strings
    for money and times."""
    view: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(record))
    del view["secret_hash"], view["previous_secret_hash"]
    view["status"] = record.status(now)
    return view


def validated(spec: KeySpec) -> KeySpec:
    """`spec` checked as the admin API checks a body (types, bounds, aware datetimes), for
    specs built in Python, which msgspec does not validate at construction. Raises
    `msgspec.ValidationError` naming the field."""
    return msgspec.convert(msgspec.to_builtins(spec), KeySpec)


def spec_of(record: KeyRecord) -> KeySpec:
    return KeySpec(**{field: getattr(record, field) for field in KeySpec.__struct_fields__})


def mint(spec: KeySpec, now: datetime) -> tuple[KeyRecord, str]:
    """A new key and its secret."""
    spec = validated(spec)
    secret = new_secret()
    fields = {field: getattr(spec, field) for field in KeySpec.__struct_fields__}
    record = KeyRecord(
        key_id=new_key_id(),
        prefix=display_prefix(secret),
        secret_hash=hash_secret(secret),
        created_at=now,
        **fields,
    )
    return record, secret


def rotated(record: KeyRecord, now: datetime, grace_seconds: float) -> tuple[KeyRecord, str]:
    """`record` with a new secret; the current one stays valid `grace_seconds` more (a
    secret replaced earlier is dropped: only one previous secret is ever accepted)."""
    if grace_seconds < 0:
        raise ValueError("grace_seconds must be >= 0")
    secret = new_secret()
    new = msgspec.structs.replace(
        record,
        prefix=display_prefix(secret),
        secret_hash=hash_secret(secret),
        rotated_from=record.prefix,
        previous_secret_hash=record.secret_hash,
        previous_secret_valid_until=now + timedelta(seconds=grace_seconds),
    )
    return new, secret


def revoked(record: KeyRecord, now: datetime) -> KeyRecord:
    """`record` revoked at `now`, or as it was if already revoked (revoking is idempotent
    and keeps the first time)."""
    if record.revoked_at is not None:
        return record
    return msgspec.structs.replace(record, revoked_at=now)


def updated(record: KeyRecord, changes: dict[str, Any]) -> KeyRecord:
    """`record` with `changes` (fields of `UPDATABLE`, else ValueError) applied and
    validated like a new spec."""
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise ValueError(f"can't update {unknown}; updatable: {sorted(UPDATABLE)}")
    spec = validated(msgspec.structs.replace(spec_of(record), **changes))
    fields = {field: getattr(spec, field) for field in changes}
    return msgspec.structs.replace(record, **fields)
