"""Event streams: writers with routing keys, reader groups, stream cuts, sealing, large events."""

import asyncio
import os
import time

import pravega_client
import pytest

from support import (
    check_per_key_order,
    make_event,
    next_slice,
    parse_event,
    read_events,
    read_nothing_for,
    run,
)

KEYS = ["key%02d" % i for i in range(20)]
PER_KEY = 100  # 2,000 events


def write_keyed(manager, scope, stream, per_key, first_seq=0):
    writer = manager.create_writer(scope, stream, 256)
    for seq in range(first_seq, first_seq + per_key):
        for key in KEYS:
            writer.write_event_bytes(make_event(key, seq), key)
    writer.flush()


def test_scope_and_stream_are_created_and_listed(manager, scope):
    assert manager.create_scope(scope) is False  # exists already
    assert manager.create_stream(scope, "events", 3) is True
    assert manager.create_stream(scope, "events", 3) is False
    policy = pravega_client.StreamScalingPolicy.fixed_scaling_policy(2)
    assert manager.create_stream_with_policy(scope, "withpolicy", policy, tags=["a", "b"]) is True
    assert sorted(manager.get_stream_tags(scope, "withpolicy")) == ["a", "b"]
    assert scope in manager.list_scope()
    # Each stream comes with its mark stream (watermarks), listed as Pravega lists it.
    assert sorted(manager.list_stream(scope)) == [
        "_MARKevents",
        "_MARKwithpolicy",
        "events",
        "withpolicy",
    ]


def test_reader_group_of_two_readers_reads_every_key_in_order(manager, scope):
    manager.create_stream(scope, "events", 4)
    write_keyed(manager, scope, "events", PER_KEY)
    total = PER_KEY * len(KEYS)

    group = manager.create_reader_group("rg", scope, "events")
    first = group.create_reader("reader-1")
    second = group.create_reader("reader-2")

    async def both():
        # reader-1 took every segment when it joined; it reads about half the events (stopping
        # inside a slice), then goes offline, which hands its segments back to the group with
        # their positions. reader-2, polling all along, picks them up at its next rebalance
        # (about 10 s after it joined) and reads the rest from those positions.
        got_1, got_2 = [], []
        deadline = time.monotonic() + 120

        async def reader_one():
            try:
                got_1.extend(await read_events(first, stop_at=total // 2))
            finally:
                first.reader_offline()

        async def reader_two():
            while len(got_1) + len(got_2) < total:
                assert time.monotonic() < deadline, "read %d + %d of %d events" % (
                    len(got_1),
                    len(got_2),
                    total,
                )
                got_2.extend(await next_slice(second))

        await asyncio.gather(reader_one(), reader_two())
        return got_1, got_2

    events_1, events_2 = run(both())
    second.reader_offline()

    assert len(events_1) == total // 2
    assert len(events_1) + len(events_2) == total, "reader-2 read %d events" % len(events_2)
    assert not set(events_1) & set(events_2), "an event was read by both readers"
    # Each key complete and in order across the hand-off, nothing twice, nothing missing.
    check_per_key_order(events_1 + events_2, {k: PER_KEY for k in KEYS})
    # Each reader saw every key's events in order (reader-2 continues where reader-1 stopped).
    first_part = {}
    for data in events_1:
        key, seq = parse_event(data)
        first_part.setdefault(key, []).append(seq)
    for key, seqs in first_part.items():
        assert seqs == list(range(len(seqs))), key
    second_part = {}
    for data in events_2:
        key, seq = parse_event(data)
        second_part.setdefault(key, []).append(seq)
    for key, seqs in second_part.items():
        start = len(first_part.get(key, []))
        assert seqs == list(range(start, PER_KEY)), key


def test_reader_group_from_tail_sees_only_new_events(manager, scope):
    manager.create_stream(scope, "tail", 2)
    writer = manager.create_writer(scope, "tail", 64)
    for seq in range(50):
        writer.write_event_bytes(make_event("old", seq), "old")
    writer.flush()
    group = manager.create_reader_group("from-tail", scope, "tail", True)
    reader = group.create_reader("r")
    for seq in range(30):
        writer.write_event_bytes(make_event("new", seq), "new")
    writer.flush()
    events = run(read_events(reader, count=30))
    events += run(read_nothing_for(reader, 2))
    reader.reader_offline()
    check_per_key_order(events, {"new": 30})


def test_reader_group_from_stream_cut_reads_the_rest(manager, scope):
    manager.create_stream(scope, "cut", 3)
    write_keyed(manager, scope, "cut", 20)
    total = 20 * len(KEYS)
    group = manager.create_reader_group("before-cut", scope, "cut")
    reader = group.create_reader("r")
    head = run(read_events(reader, stop_at=150))
    # Going offline records the reader's positions in the group; the cut is taken from them.
    reader.reader_offline()
    cut = group.get_streamcut()
    offsets = cut.get_segment_offset_map()
    assert sorted(offsets) == [0, 1, 2], offsets

    rest_group = manager.create_reader_group("after-cut", scope, "cut", False, cut)
    rest_reader = rest_group.create_reader("r")
    rest = run(read_events(rest_reader, count=total - len(head)))
    rest += run(read_nothing_for(rest_reader, 2))
    rest_reader.reader_offline()
    assert not set(head) & set(rest)
    check_per_key_order(head + rest, {k: 20 for k in KEYS})


def test_sealed_stream_refuses_writes_and_readers_reach_its_end(manager, scope):
    manager.create_stream(scope, "sealed", 3)
    write_keyed(manager, scope, "sealed", 10)
    total = 10 * len(KEYS)
    group = manager.create_reader_group("rg", scope, "sealed")
    reader = group.create_reader("r")
    # Before the seal the group holds a position in each of the three segments.
    assert sorted(group.get_streamcut().get_segment_offset_map()) == [0, 1, 2]

    assert manager.seal_stream(scope, "sealed") is True
    writer = manager.create_writer(scope, "sealed")
    with pytest.raises(Exception):
        writer.write_event_bytes(make_event("late", 0), "late")
        writer.flush()

    events = run(read_events(reader, count=total))
    check_per_key_order(events, {k: 10 for k in KEYS})
    # End of stream: no more events, and the group has completed every segment (no successor
    # to read). The 0.3.8 client has no end-of-stream call; the observable sign is that the
    # group has no segment left to cut, which get_streamcut reports with a panic.
    assert run(read_nothing_for(reader, 3)) == []
    with pytest.raises(BaseException, match="Expected a StreamCut but none found"):
        group.get_streamcut()
    reader.reader_offline()


@pytest.mark.parametrize(
    "size",
    [
        1024 * 1024,
        8 * 1024 * 1024,  # Pravega's classic maximum
        12 * 1024 * 1024,  # above 8 MiB: the client's large-event path (transient segment + merge)
        16 * 1024 * 1024 - 5,  # the largest the 0.3.8 client will send
    ],
)
def test_large_event_round_trips(manager, scope, size):
    manager.create_stream(scope, "large", 1)
    writer = manager.create_writer(scope, "large")
    payload = os.urandom(size)
    writer.write_event_bytes(make_event("small", 0), "k")
    writer.write_event_bytes(payload, "k")
    writer.write_event_bytes(make_event("small", 1), "k")
    writer.flush()
    group = manager.create_reader_group("rg", scope, "large")
    reader = group.create_reader("r")
    events = run(read_events(reader, count=3))
    reader.reader_offline()
    assert parse_event(events[0]) == ("small", 0)
    assert len(events[1]) == size and events[1] == payload
    assert parse_event(events[2]) == ("small", 1)


def test_event_above_client_limit_is_rejected_by_the_client(manager, scope):
    manager.create_stream(scope, "huge", 1)
    writer = manager.create_writer(scope, "huge")
    with pytest.raises(ValueError, match="SizeLimit"):
        writer.write_event_bytes(b"x" * (16 * 1024 * 1024), "k")
        writer.flush()
