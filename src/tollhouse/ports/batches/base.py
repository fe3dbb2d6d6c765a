"""The batch store: the Message Batches and batch files a gateway relayed, whose each is,
and, until they are recorded, each line's call (src/tollhouse/batches/held.py keeps them
in memory in front of it).

Its own port rather than part of the ledger's: the ledger takes call records in
append-only batches through its writer and spill file, while a batch is read back, listed
by key and claimed with a conditional update. The two share a database and a schema (the
tables are ledger migration steps, `m012_batches`), so a gateway configured with a ledger
needs nothing more. With the ledger off there is no store and batches live in the process
that made them.

Recording a batch exactly once across processes: `claim` is one conditional UPDATE that
only one process wins (`recorded_by` NULL, or a claim older than `stale_after` seconds
that never reached `done`: its process died mid-way); the winner writes the lines (their
request ids `<batch id>:<custom_id>` are unique in the ledger, so a takeover writing them
again keeps each once) and then marks it `done`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class BatchStoreUnavailable(Exception):
    """The database could not be reached or refused to work."""


@dataclass(slots=True)
class StoredBatch:
    id: str  # the gateway's batch id (the provider's: the gateway shows it unchanged)
    provider_batch_id: str
    client_format: str
    key_id: str | None
    provider: str  # the provider's name in the config
    models: list[str]
    headers: dict[str, str]  # what the upstream is sent on every request of the batch
    # Each line's call as it will be recorded (batches/stored_lines.py); [] once recorded.
    lines: list[dict[str, Any]]
    created_at: float
    state: str = "open"  # "open", then "recorded"
    recorded_by: str | None = None


@dataclass(slots=True)
class StoredFile:
    id: str
    key_id: str | None
    provider: str
    # An input file's requests ({custom_id, body}) until a batch is made of it; None after,
    # and for a batch's output or error file.
    lines: list[dict[str, Any]] | None = None
    created_at: float = field(default=0.0)


class BatchStore(Protocol):
    async def add_batch(self, batch: StoredBatch) -> None: ...

    async def get_batch(self, batch_id: str) -> StoredBatch | None: ...

    async def owned(self, key_id: str | None, client_format: str, limit: int) -> list[str]:
        """The ids of `key_id`'s batches of `client_format`, newest first, `limit` at most."""
        ...

    async def unrecorded(self, limit: int) -> list[str]:
        """The ids of batches whose lines are not recorded yet, oldest first."""
        ...

    async def claim(self, batch_id: str, by: str, now: float, stale_after: float) -> bool:
        """Whether `by` is now the one to record the batch (see the module's docstring)."""
        ...

    async def done(self, batch_id: str, by: str, now: float) -> None:
        """`by` wrote every line: the batch is recorded, its lines dropped."""
        ...

    async def add_file(self, file: StoredFile) -> None: ...

    async def get_file(self, file_id: str) -> StoredFile | None: ...

    async def take_file(self, file_id: str) -> bool:
        """Whether this caller made the input file a batch (its lines taken), not another."""
        ...

    async def give_back_file(self, file_id: str, lines: list[dict[str, Any]]) -> None:
        """The batch `take_file` was for was not made: the file's lines wait for another."""
        ...

    async def aclose(self) -> None: ...
