"""`tollhouse usage` and `tollhouse logs` when the ledger can't be read, or their reader
goes away: one line on stderr and an exit code, never a traceback, and never a database
file created where none was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.ledger_cli import Ledger, record

from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.runner import free_port

COMMANDS = [["usage"], ["logs"]]


def tollhouse(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tollhouse", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_sqlite_path_that_does_not_exist_is_an_error_and_is_not_created(
    tmp_path: Path, command: list[str]
) -> None:
    # A mistyped path used to create an empty ledger there and report "no calls".
    result = tollhouse(*command, "--sqlite", "ledgr.db", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr == f"tollhouse {command[0]}: no ledger at ledgr.db: the file does not exist\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_the_default_ledger_missing_from_the_working_directory_is_said_so(
    tmp_path: Path, command: list[str]
) -> None:
    result = tollhouse(*command, cwd=tmp_path)
    assert result.returncode == 2
    assert "no ledger at tollhouse.db: the file does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_unreachable_postgres_is_one_line_not_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    conninfo = f"host=127.0.0.1 port={free_port()} dbname=test connect_timeout=5"
    result = tollhouse(*command, "--postgres", conninfo, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tollhouse {command[0]}: cannot read the ledger: ")
    assert "Connection refused" in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_file_that_is_no_database_is_one_line_not_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    result = tollhouse(*command, "--sqlite", "notes.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr == f"tollhouse {command[0]}: cannot read the ledger: file is not a database\n"
    )


@pytest.mark.parametrize(
    "command",
    [["logs", "--json", "-n", "3000"], ["usage", "--json", "--by", "user", "--since", "3650d"]],
    ids=["logs", "usage"],
)
def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path: Path, command: list[str]) -> None:
    # `tollhouse logs --json | head -1`: more output than a pipe buffer holds, and a reader
    # that stops after the first line.
    path = tmp_path / "ledger.db"
    Ledger([], lambda: SQLiteLedgerStore(path)).fill(
        [record(n, end_user=f"user-{n}") for n in range(3000)]
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tollhouse", *command, "--sqlite", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert stderr == ""
