"""The synced ledger's journal: records on disk before their future resolves, segments
emptied once their records are in hand, and a dead process's journal replayed by the next."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tollhouse.ports.ledger.journal import Journal
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.spill import SpillFile, open_spill

MakeRecord = Callable[..., CallRecord]


def on_disk(path: Path) -> list[CallRecord]:
    records: list[CallRecord] = []
    for file in sorted(path.parent.glob("ledger*.spill")):
        spill = SpillFile(file)
        records += spill.read(0, 1000).records
        spill.close()
    return records


def test_a_record_is_on_disk_when_its_future_resolves(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        spill = open_spill(tmp_path / "ledger.spill")
        journal = Journal(tmp_path / "ledger.spill", max_bytes=1 << 20)
        waiting = [journal.append(make_record(n)) for n in range(20)]
        await asyncio.gather(*waiting)
        assert journal.size > 0
        await journal.aclose(clear=False)  # as a crash leaves it: records kept
        spill.close()

    asyncio.run(scenario())
    assert sorted(r.request_id for r in on_disk(tmp_path / "ledger.spill")) == [
        make_record(n).request_id for n in range(20)
    ]


def test_a_sealed_segment_is_emptied_on_release_and_the_active_one_kept(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    async def scenario() -> None:
        spill = open_spill(tmp_path / "ledger.spill")
        journal = Journal(tmp_path / "ledger.spill", max_bytes=1 << 20)
        await journal.append(make_record(1))
        assert journal.seal()
        assert not journal.seal()  # the sealed segment is still held
        await journal.append(make_record(2))
        await journal.release_sealed()
        assert journal.seal()
        await journal.release_sealed()
        assert journal.size == 0
        await journal.append(make_record(3))
        await journal.aclose(clear=False)
        spill.close()

    asyncio.run(scenario())
    assert [r.request_id for r in on_disk(tmp_path / "ledger.spill")] == [make_record(3).request_id]


def test_the_journal_of_a_dead_process_is_taken_over_by_the_next_start(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    async def crashed() -> None:
        spill = open_spill(tmp_path / "ledger.spill")
        journal = Journal(tmp_path / "ledger.spill", max_bytes=1 << 20)
        await asyncio.gather(*(journal.append(make_record(n)) for n in range(5)))
        await journal.aclose(clear=False)
        spill.close()

    asyncio.run(crashed())
    spill = open_spill(tmp_path / "ledger.spill")
    try:
        assert sorted(r.request_id for r in spill.read(0, 100).records) == [
            make_record(n).request_id for n in range(5)
        ]
    finally:
        spill.close()
