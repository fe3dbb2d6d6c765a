"""`tollhouse keys`, end to end against a SQLite file, through a parser built with
`commands.keys.register` the way the main CLI builds it."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tollhouse.commands.keys import register
from tollhouse.ports.keys.key_ring import KeyRing
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.ports.keys.sqlite import SQLiteKeyStore


class Cli:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys
        self.parser = argparse.ArgumentParser(prog="tollhouse")
        register(self.parser.add_subparsers(dest="command", required=True))

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        """Exit status, stdout, stderr of `tollhouse keys <argv> --sqlite <db>`."""
        args = self.parser.parse_args(["keys", *argv, "--sqlite", str(self.db)])
        status = args.run(args)
        out, err = self.capsys.readouterr()
        return status, out, err

    def authenticate(self, secret: str) -> KeyRecord:
        async def main() -> KeyRecord:
            store = SQLiteKeyStore(self.db)
            try:
                return await KeyRing(store).authenticate(secret)
            finally:
                await store.aclose()

        return asyncio.run(main())


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "tollhouse.db", capsys)


def create(cli: Cli, *extra: str) -> tuple[str, str]:
    """(key id, secret) of a new key."""
    status, out, _ = cli("create", "--name", "ci", *extra)
    assert status == 0
    secret = out.strip()
    return cli.authenticate(secret).key_id, secret


def test_create_prints_the_secret_once_on_stdout_with_a_warning_on_stderr(cli: Cli) -> None:
    status, out, err = cli("create", "--name", "ci")
    assert status == 0
    assert out.strip().startswith("th-")
    assert "shown once" in err


def test_created_secret_authenticates_with_every_flag_applied(cli: Cli) -> None:
    status, out, _ = cli(
        "create", "--name", "ci", "--user", "ada", "--team", "payments", "--project", "checkout",
        "--models", "claude-*", "--models", "gpt-4o-mini", "--rpm", "60", "--input-tpm", "1000",
        "--output-tpm", "500", "--concurrency", "2", "--daily-budget", "1.50",
        "--monthly-budget", "30", "--budget-mode", "reserve", "--end-users", "--expires", "30d",
    )  # fmt: skip
    assert status == 0
    record = cli.authenticate(out.strip())
    assert (record.user, record.team, record.project) == ("ada", "payments", "checkout")
    assert record.allowed_models == ("claude-*", "gpt-4o-mini")
    assert (record.limits.rpm, record.limits.input_tpm) == (60, 1000)
    assert (record.limits.output_tpm, record.limits.concurrency) == (500, 2)
    assert record.budget.daily_usd == Decimal("1.50")
    assert record.budget.monthly_usd == Decimal("30")
    assert record.budget.mode == "reserve"
    assert record.end_users
    assert record.expires_at is not None
    assert record.expires_at > datetime.now(UTC) + timedelta(days=29)


def test_expires_takes_an_rfc3339_time(cli: Cli) -> None:
    _, out, _ = cli("create", "--name", "ci", "--expires", "2031-06-01T12:00:00Z")
    assert cli.authenticate(out.strip()).expires_at == datetime(2031, 6, 1, 12, tzinfo=UTC)


def test_expires_without_a_zone_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit):
        cli("create", "--name", "ci", "--expires", "2031-06-01T12:00:00")
    assert "RFC 3339" in cli.capsys.readouterr().err


def test_a_negative_budget_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit):
        cli("create", "--name", "ci", "--daily-budget", "-1")


def test_list_shows_a_table_without_secrets(cli: Cli) -> None:
    key_id, secret = create(cli, "--team", "payments")
    status, out, _ = cli("list")
    assert status == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "PREFIX"]
    assert row.split()[0] == key_id
    assert "payments" in row
    assert secret not in out


def test_list_json_gives_one_object_per_key_without_hashes(cli: Cli) -> None:
    key_id, _ = create(cli)
    status, out, _ = cli("list", "--json")
    assert status == 0
    (view,) = [json.loads(line) for line in out.splitlines()]
    assert view["key_id"] == key_id
    assert "secret_hash" not in view


def test_show_prints_one_key(cli: Cli) -> None:
    key_id, _ = create(cli)
    status, out, _ = cli("show", key_id)
    assert status == 0
    assert json.loads(out)["key_id"] == key_id


def test_show_of_an_unknown_id_fails_with_a_message(cli: Cli) -> None:
    create(cli)  # the database exists
    status, _, err = cli("show", "key_000000000000")
    assert status == 1
    assert "key_000000000000" in err


def test_revoke_stops_the_key_and_hides_it_from_the_list(cli: Cli) -> None:
    key_id, secret = create(cli)
    assert cli("revoke", key_id)[0] == 0
    with pytest.raises(Exception, match="revoked"):
        cli.authenticate(secret)
    assert key_id not in cli("list")[1]
    assert key_id in cli("list", "--all")[1]


def test_rotate_prints_a_new_secret_and_the_old_one_stops_working(cli: Cli) -> None:
    key_id, old = create(cli)
    status, out, _ = cli("rotate", key_id)
    assert status == 0
    assert cli.authenticate(out.strip()).key_id == key_id
    with pytest.raises(Exception, match="rotated"):
        cli.authenticate(old)


def test_rotate_with_grace_keeps_the_old_secret_working(cli: Cli) -> None:
    key_id, old = create(cli)
    status, _, err = cli("rotate", key_id, "--grace", "1h")
    assert status == 0
    assert "old secret works until" in err
    assert cli.authenticate(old).key_id == key_id


def test_rotate_of_a_revoked_key_fails_with_a_message(cli: Cli) -> None:
    key_id, _ = create(cli)
    cli("revoke", key_id)
    status, _, err = cli("rotate", key_id)
    assert status == 1
    assert "revoked" in err
