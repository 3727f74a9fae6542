"""Local accounts, sessions, enrolment codes, the login throttle: and the attacks on each."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from vigil.core.identity import Principal, Role
from vigil.shell.identity.accounts import Accounts
from vigil.shell.identity.scrypt_hash import scrypt_hash as hash_password, scrypt_matches as check_password
from vigil.shell.identity.enrolment import EnrolmentCodes
from vigil.shell.identity.sessions import Sessions, StreamTickets, csrf_ok, digest
from vigil.shell.identity.throttle import Throttle
from vigil.shell.stores.sql import SqlStore
from vigil.shell.stores.tables import enrolment_codes, sessions, users


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'v.sqlite'}")
    yield store
    store.close()


def test_password_hash_is_scrypt_salted_and_checked(store) -> None:
    one, two = hash_password("a long passphrase"), hash_password("a long passphrase")
    assert one.startswith("scrypt$") and one != two  # salted
    assert check_password("a long passphrase", one) and not check_password("a long passphrasE", one)
    assert not check_password("x", "md5$whatever") and not check_password("x", "garbage")


def test_accounts_add_verify_disable(store) -> None:
    accounts = Accounts(store.engine)
    generated = accounts.add("Nurse.Jo", Role.NURSE, wards=["w1"], display_name="Jo")
    assert len(generated) >= 20
    assert accounts.verify("nurse.jo", generated).principal() == Principal("local:nurse.jo", "Jo", Role.NURSE,
                                                                            frozenset({"w1"}))
    assert accounts.verify("nurse.jo", "wrong password") is None
    assert accounts.verify("nobody", generated) is None
    with store.engine.connect() as conn:  # the password itself is stored nowhere
        assert generated not in str(conn.execute(select(users)).all())
    with pytest.raises(ValueError):
        accounts.add("nurse.jo", Role.NURSE, wards=["w1"])
    with pytest.raises(ValueError):
        accounts.add("doc", Role.PHYSICIAN)  # no ward
    with pytest.raises(ValueError):
        accounts.add("pat", Role.PATIENT, patients=["p1", "p2"])
    with pytest.raises(ValueError):
        accounts.add("x y", Role.NURSE, wards=["w1"])
    with pytest.raises(ValueError):
        accounts.add("short", Role.NURSE, wards=["w1"], password="short")
    sessions_ = Sessions(store.engine)
    sid, _ = sessions_.open(accounts.get("nurse.jo").principal(), username="nurse.jo")
    assert accounts.disable("nurse.jo") and not accounts.disable("nobody")
    assert accounts.verify("nurse.jo", generated) is None
    assert sessions_.find(sid) is None  # disabling ended the session


def test_sessions_expire_idle_and_logout(store) -> None:
    clock = Clock()
    book = Sessions(store.engine, max_age_s=3600, idle_s=600, clock=clock)
    who = Principal("local:jo", "Jo", Role.NURSE, frozenset({"w1"}))
    sid, session = book.open(who, username="jo")
    with store.engine.connect() as conn:
        assert conn.execute(select(sessions.c.id_hash)).scalar_one() == digest(sid)  # only the hash
    assert book.find(sid).principal == who and csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "x") and not csrf_ok(session, "é")
    clock.t += 500
    assert book.find(sid) is not None  # touched
    clock.t += 500
    assert book.find(sid) is not None
    clock.t += 601
    assert book.find(sid) is None  # idle too long
    sid, _ = book.open(who, username="jo")
    for _ in range(7):
        clock.t += 500
        assert book.find(sid) is not None
    clock.t += 500
    assert book.find(sid) is None  # past its max age, however busy
    sid, _ = book.open(who, username="jo")
    book.close(sid)
    assert book.find(sid) is None
    assert book.find("forged") is None


def test_enrolment_code_once_and_briefly(store) -> None:
    clock = Clock()
    codes = EnrolmentCodes(store.engine, ttl_s=900, clock=clock)
    code = codes.issue("p-001", "local:nurse")
    with store.engine.connect() as conn:
        assert code not in str(conn.execute(select(enrolment_codes)).all())
    assert codes.redeem(code.lower()[:5] + "-" + code[5:]) == "p-001"  # as typed, with a dash
    assert codes.redeem(code) is None  # single use
    late = codes.issue("p-002", "local:nurse")
    clock.t += 901
    assert codes.redeem(late) is None
    assert codes.redeem("AAAAAAAAAA") is None


def test_stream_tickets_single_use_and_short() -> None:
    clock = Clock()
    tickets = StreamTickets(ttl_s=60, clock=clock)
    who = Principal("local:jo", "Jo", Role.NURSE, frozenset({"w1"}))
    ticket = tickets.issue(who)
    assert tickets.redeem(ticket) == who and tickets.redeem(ticket) is None
    late = tickets.issue(who)
    clock.t += 61
    assert tickets.redeem(late) is None


def test_throttle_blocks_after_failures_and_forgets() -> None:
    clock = Clock()
    throttle = Throttle(per_key=3, window_s=60, capacity=2, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("u:jo")
        throttle.failed("u:jo")
    assert throttle.blocked("u:jo") and throttle.retry_after_s("u:jo") > 0
    clock.t += 61
    assert not throttle.blocked("u:jo")
    throttle.failed("a"), throttle.failed("b"), throttle.failed("c")
    assert len(throttle._failures) == 2  # bounded


def test_cached_sessions_end_at_once_here_and_within_seconds_elsewhere(store) -> None:
    from vigil.settings import VigilSettings
    from vigil.shell.identity.people import People
    from vigil.shell.identity.sessions import CACHE_S

    clock = Clock()
    people = People.from_settings(VigilSettings(), store.engine)
    people.sessions.clock = clock
    people.accounts.add("jo", Role.NURSE, wards=["w1"], password="a long passphrase")
    sid, _ = people.sessions.open(people.accounts.get("jo").principal(), username="jo")
    assert people.sessions.cached(sid) is None and people.sessions.find(sid) is not None
    assert people.sessions.cached(sid) is not None  # no query for CACHE_S
    people.accounts.disable("jo")
    assert people.sessions.cached(sid) is None and people.sessions.find(sid) is None  # at once, in this process
    people.accounts.add("al", Role.NURSE, wards=["w1"], password="a long passphrase")
    sid, _ = people.sessions.open(people.accounts.get("al").principal(), username="al")
    assert people.sessions.find(sid) is not None
    Sessions(store.engine).close(sid)  # another process logs it out
    clock.t += CACHE_S + 0.1
    assert people.sessions.cached(sid) is None and people.sessions.find(sid) is None
