"""Dashboard sessions on their own (dashboard/sessions.py), on a clock the test moves: a
session lasts its lifetime and no longer, a tampered cookie is nobody's, a signed-out one
stays out, the table of ended sessions stays bounded, failed sign-ins are throttled, and
changing a token ends every session."""

from __future__ import annotations

import pytest

from tollhouse.dashboard.sessions import MAX_FAILURES, Sessions, SignInRefused


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def sessions(
    clock: Clock, admin: str | None = "admin-token", read: str | None = "read-token", **options: int
) -> Sessions:
    return Sessions(
        admin,
        read,
        lifetime=options.get("lifetime", 3600),
        max_ended=options.get("max_ended", 3),
        clock=clock,
    )


def test_each_token_signs_in_with_its_role_for_the_lifetime() -> None:
    clock = Clock()
    table = sessions(clock)
    admin, admin_cookie = table.sign_in("admin-token")
    read, read_cookie = table.sign_in("  read-token\n")
    assert (admin.role, read.role) == ("admin", "read")
    assert table.check(admin_cookie) == admin
    assert "admin-token" not in admin_cookie
    clock.now += 3599
    assert table.check(read_cookie) is not None
    clock.now += 1
    assert table.check(read_cookie) is None


def test_a_tampered_cookie_is_nobodys() -> None:
    table = sessions(Clock())
    _, cookie = table.sign_in("read-token")
    session_id, role, expires, mac = cookie.split(".")
    for forged in (
        f"{session_id}.admin.{expires}.{mac}",
        f"{session_id}.{role}.{int(expires) + 10**6}.{mac}",
        f"{session_id}.{role}.{expires}.{'0' * len(mac)}",
        "",
        "garbage",
        "a.b.c.d.e",
    ):
        assert table.check(forged) is None


def test_the_csrf_token_belongs_to_its_session() -> None:
    table = sessions(Clock())
    one, _ = table.sign_in("admin-token")
    other, _ = table.sign_in("admin-token")
    assert table.csrf_valid(one, one.csrf)
    assert not table.csrf_valid(one, other.csrf)
    assert not table.csrf_valid(one, None)
    assert not table.csrf_valid(one, "")


def test_signed_out_sessions_stay_out_and_their_table_is_bounded() -> None:
    clock = Clock()
    table = sessions(clock, max_ended=3)
    opened = [table.sign_in("read-token") for _ in range(5)]
    for session, _ in opened:
        table.sign_out(session)
    assert len(table._ended) == 3  # the oldest forgotten first
    for _, cookie in opened[2:]:
        assert table.check(cookie) is None
    clock.now += 3600  # every one has expired anyway: a new sign-out clears them
    fresh, fresh_cookie = table.sign_in("read-token")
    table.sign_out(fresh)
    assert list(table._ended) == [fresh.id]
    assert table.check(fresh_cookie) is None


def test_failed_sign_ins_are_throttled_for_a_minute() -> None:
    clock = Clock()
    table = sessions(clock)
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused) as refused:
            table.sign_in("guess")
        assert not refused.value.throttled
    with pytest.raises(SignInRefused) as throttled:
        table.sign_in("admin-token")
    assert throttled.value.throttled
    clock.now += 61
    session, _ = table.sign_in("admin-token")
    assert session.role == "admin"


def test_changing_a_token_ends_every_session() -> None:
    clock = Clock()
    _, cookie = sessions(clock).sign_in("read-token")
    assert sessions(clock).check(cookie) is not None  # another worker, same tokens
    assert sessions(clock, read="new-read-token").check(cookie) is None


def test_without_tokens_nobody_signs_in() -> None:
    table = sessions(Clock(), admin=None, read=None)
    assert not table.enabled
    with pytest.raises(SignInRefused):
        table.sign_in("")
    read_only = sessions(Clock(), admin=None)
    with pytest.raises(SignInRefused):
        read_only.sign_in("admin-token")
    assert read_only.sign_in("read-token")[0].role == "read"
