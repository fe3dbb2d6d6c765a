"""The spill file holds records while the store is away, within a size bound, across restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.spill import SpillFile, SpillFileInUse, open_spill, spill_slot

MakeRecord = Callable[..., CallRecord]


@pytest.fixture
def spill(tmp_path: Path) -> Iterator[SpillFile]:
    spill = SpillFile(tmp_path / "ledger.spill")
    yield spill
    spill.close()


def test_records_read_back_in_the_order_they_were_appended(
    spill: SpillFile, make_record: MakeRecord
) -> None:
    records = [make_record(n) for n in range(5)]
    assert spill.append(records[:3]) == 3
    assert spill.append(records[3:], sync=False) == 2

    first = spill.read(0, limit=4)
    rest = spill.read(first.end, limit=4)

    assert first.records == records[:4]
    assert rest.records == records[4:]
    assert rest.end == spill.size


def test_records_past_max_bytes_are_refused_not_written(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    line = len(msgspec.json.encode(make_record(0))) + 1  # the same for records 0 to 9
    spill = SpillFile(tmp_path / "ledger.spill", max_bytes=line * 3 + line // 2)

    assert spill.append([make_record(n) for n in range(5)]) == 3
    assert spill.append([make_record(9)]) == 0
    assert spill.read(0, 10).records == [make_record(0), make_record(1), make_record(2)]
    spill.close()


def test_a_reopened_spill_still_holds_its_records(tmp_path: Path, make_record: MakeRecord) -> None:
    path = tmp_path / "ledger.spill"
    first = SpillFile(path)
    first.append([make_record(1), make_record(2)])
    first.close()

    again = SpillFile(path)
    assert again.read(0, 10).records == [make_record(1), make_record(2)]
    again.close()


def test_a_line_torn_by_a_crash_is_cut_off_on_open(tmp_path: Path, make_record: MakeRecord) -> None:
    path = tmp_path / "ledger.spill"
    first = SpillFile(path)
    first.append([make_record(1)])
    whole = first.size
    first.close()
    with path.open("ab") as file:
        file.write(b'{"request_id":"req_torn","ts":')

    again = SpillFile(path)
    again.append([make_record(2)])

    assert again.read(0, 10).records == [make_record(1), make_record(2)]
    assert again.size > whole
    again.close()


def test_an_unreadable_line_is_skipped_and_counted(tmp_path: Path, make_record: MakeRecord) -> None:
    path = tmp_path / "ledger.spill"
    path.write_bytes(b'{"not": "a record"}\n')
    spill = SpillFile(path)
    spill.append([make_record(1)])

    chunk = spill.read(0, 10)

    assert (chunk.records, chunk.unreadable, chunk.end) == ([make_record(1)], 1, spill.size)
    spill.close()


def test_truncate_empties_the_file_only_if_nothing_was_appended_since_the_read(
    spill: SpillFile, make_record: MakeRecord
) -> None:
    spill.append([make_record(1)])
    read_up_to = spill.read(0, 10).end
    spill.append([make_record(2)])

    assert spill.truncate_if_unchanged(read_up_to) is False
    assert spill.read(read_up_to, 10).records == [make_record(2)]
    assert spill.truncate_if_unchanged(spill.size) is True
    assert spill.size == 0
    assert spill.read(0, 10).records == []


def test_a_spill_file_belongs_to_one_writer_at_a_time(spill: SpillFile) -> None:
    with pytest.raises(SpillFileInUse):
        SpillFile(spill.path)


def test_processes_sharing_a_spill_path_each_get_a_slot_of_their_own(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    first = open_spill(tmp_path / "ledger.spill")
    second = open_spill(tmp_path / "ledger.spill")
    try:
        assert first.path == tmp_path / "ledger.spill"
        assert second.path == tmp_path / "ledger.1.spill"
        assert first.append([make_record(1)]) == second.append([make_record(2)]) == 1
        assert first.read(0, 10).records == [make_record(1)]
        assert second.read(0, 10).records == [make_record(2)]
    finally:
        first.close()
        second.close()


def test_the_slot_of_a_stopped_process_is_taken_over_by_the_next_start(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    left = SpillFile(spill_slot(tmp_path / "ledger.spill", 3))
    left.append([make_record(1), make_record(2)])
    left.close()  # as a crash would leave it: nobody holds it

    spill = open_spill(tmp_path / "ledger.spill")
    try:
        assert spill.path == tmp_path / "ledger.spill"
        assert spill.read(0, 10).records == [make_record(1), make_record(2)]
        assert (tmp_path / "ledger.3.spill").stat().st_size == 0
    finally:
        spill.close()


def test_the_slot_of_a_running_process_is_left_alone(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    running = open_spill(tmp_path / "ledger.spill")
    running.append([make_record(1)])
    spill = open_spill(tmp_path / "ledger.spill")
    try:
        assert spill.size == 0
        assert running.read(0, 10).records == [make_record(1)]
    finally:
        running.close()
        spill.close()


def test_a_left_slot_too_big_for_the_bound_waits_for_a_later_start(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    left = SpillFile(spill_slot(tmp_path / "ledger.spill", 1))
    left.append([make_record(n) for n in range(3)])
    left.close()

    spill = open_spill(tmp_path / "ledger.spill", max_bytes=left.size - 1)
    spill.close()
    still = SpillFile(tmp_path / "ledger.1.spill")
    assert still.read(0, 10).records == [make_record(n) for n in range(3)]
    still.close()
