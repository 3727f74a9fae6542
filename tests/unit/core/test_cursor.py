"""DeviceCursor (core.cursor): duplicates, late samples, counter resets, and the stray sample."""

from vigil.core.cursor import ADOPTED, LATE, NEW, RIVAL_SAMPLES, RIVAL_SPAN_S, DeviceCursor

T0 = 1_800_000_000.0


def live(cursor: DeviceCursor, seqs: range, every: float = 5.0) -> None:
    for seq in seqs:
        assert cursor.place(seq, T0 + seq * every) == NEW
        cursor.accept(seq, T0 + seq * every)


def test_a_stray_with_a_huge_seq_is_dropped_once_the_real_stream_has_gone_on_long_enough():
    cursor = DeviceCursor()
    live(cursor, range(1, 50))
    cursor.place(10**9, T0 + 10_000)
    cursor.accept(10**9, T0 + 10_000)
    assert cursor.support == 1
    outcomes = [cursor.place(seq, T0 + seq * 5.0) for seq in range(50, 50 + 40)]
    adopted = outcomes.index(ADOPTED)
    assert all(o == LATE for o in outcomes[:adopted])
    assert adopted + 1 >= RIVAL_SAMPLES and adopted * 5.0 >= RIVAL_SPAN_S
    assert cursor.last_seq == 50 + adopted and cursor.last_t < T0 + 10_000
    assert all(o == NEW for o in outcomes[adopted + 1:])


def test_attack_a_long_late_batch_behind_a_supported_stream_is_never_adopted():
    cursor = DeviceCursor()
    live(cursor, range(1, 100))
    live(cursor, range(200, 400))
    assert all(cursor.place(seq, T0 + seq * 5.0) == LATE for seq in range(100, 200))
    assert cursor.last_seq == 399


def test_attack_a_few_strays_cannot_hold_the_cursor_either():
    cursor = DeviceCursor()
    live(cursor, range(1, 50))
    for k in range(3):  # a test publisher's three samples
        cursor.place(10**9 + k, T0 + 10_000 + k)
        cursor.accept(10**9 + k, T0 + 10_000 + k)
    outcomes = [cursor.place(seq, T0 + seq * 5.0) for seq in range(50, 90)]
    assert ADOPTED in outcomes


def test_a_duplicate_is_a_duplicate_and_a_reset_is_new():
    cursor = DeviceCursor()
    live(cursor, range(1, 10))
    assert cursor.check(9) == "duplicate_seq" and cursor.check(5) == "duplicate_seq"
    assert cursor.place(1, T0 + 1000) == NEW  # rebooted: smaller seq, newer time


def test_a_state_pickled_before_issue_13_still_loads():
    """A Faust changelog holds monitors pickled by the previous release."""
    import pickle

    from vigil.core.patient import PatientMonitor
    from vigil.core.reading import Reading

    monitor = PatientMonitor("pt-1")
    monitor.observe(Reading("pt-1", "wr-1", T0, 1, hr=70.0, spo2=97.0))
    reduced = monitor.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    state = reduced[2]
    slots = dict(state[1])
    for name in ("coverage", "coverage_limits", "not_monitored"):
        del slots[name]
    cursor_state = slots["devices"]["wr-1"].__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2]
    old_cursor = {k: v for k, v in cursor_state[1].items() if not k.startswith("rival") and k != "support"}
    restored = PatientMonitor.__new__(PatientMonitor)
    restored.__setstate__((None, slots))
    cursor = DeviceCursor.__new__(DeviceCursor)
    cursor.__setstate__((None, old_cursor))
    restored.devices = {"wr-1": cursor}
    assert restored.tick(T0 + 60) == [] and restored.verdict(T0 + 60).monitored
    assert cursor.place(2, T0 + 5) == NEW and cursor.last_seq == 1
    again = pickle.loads(pickle.dumps(restored))
    assert again.coverage is not None and again.devices["wr-1"].support == cursor.support
