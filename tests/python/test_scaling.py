"""Scaling. The 0.3.8 client has no scale call; raising a fixed policy's minimum number of
segments with update_stream_with_policy makes the controller split the stream (as Pravega does)."""

import time

import pravega_client

from support import check_per_key_order, make_event, read_events, read_nothing_for, run, scaling_events

KEYS = ["s%02d" % i for i in range(20)]


def current_segments(server, scope, stream):
    events = scaling_events(server, scope, stream)
    return sorted((s["keyStart"], s["keyEnd"]) for s in events[-1]["segmentList"])


def test_raising_min_segments_scales_and_keeps_key_order(server, manager, scope):
    fixed = pravega_client.StreamScalingPolicy.fixed_scaling_policy
    assert manager.create_stream_with_policy(scope, "scaled", fixed(2)) is True
    assert current_segments(server, scope, "scaled") == [(0.0, 0.5), (0.5, 1.0)]

    writer = manager.create_writer(scope, "scaled", 128)
    for seq in range(50):
        for key in KEYS:
            writer.write_event_bytes(make_event(key, seq), key)
    writer.flush()

    assert manager.update_stream_with_policy(scope, "scaled", fixed(4)) is True
    deadline = time.monotonic() + 30
    while len(current_segments(server, scope, "scaled")) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    segments = current_segments(server, scope, "scaled")
    assert len(segments) == 4, "after raising the minimum to 4: %s" % segments
    assert segments[0][0] == 0.0 and segments[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(segments, segments[1:])), segments

    # The same writer goes on: its old segments are sealed, it moves to the successors.
    for seq in range(50, 100):
        for key in KEYS:
            writer.write_event_bytes(make_event(key, seq), key)
    writer.flush()
    manager.seal_stream(scope, "scaled")

    group = manager.create_reader_group("rg", scope, "scaled")
    reader = group.create_reader("r")
    events = run(read_events(reader, count=100 * len(KEYS)))
    events += run(read_nothing_for(reader, 2))
    reader.reader_offline()
    # Every key is read predecessor first, successor after: in order across the scale.
    check_per_key_order(events, {k: 100 for k in KEYS})
