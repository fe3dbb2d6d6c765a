"""The guard every test runs under (tests/working_directory.py) catches what it must."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.working_directory import WroteOutsideTmp, confined_to


def test_a_file_left_in_the_working_directory_fails_naming_it(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    with (
        pytest.raises(WroteOutsideTmp, match=r"working directory: tollhouse\.db"),
        confined_to(cwd, checkout),
    ):
        Path("tollhouse.db").write_bytes(b"")


def test_a_file_added_to_the_checkout_fails_naming_it(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    checkout = tmp_path / "checkout"
    (checkout / "tests").mkdir(parents=True)
    with (
        pytest.raises(WroteOutsideTmp, match=r"checkout: tests/ledger\.spill"),
        confined_to(cwd, checkout),
    ):
        (checkout / "tests" / "ledger.spill").write_bytes(b"")


def test_the_body_runs_in_the_directory_and_comes_back(tmp_path: Path) -> None:
    before = os.getcwd()
    with confined_to(tmp_path, tmp_path / "absent"):
        assert Path.cwd() == tmp_path.resolve()
    assert os.getcwd() == before
