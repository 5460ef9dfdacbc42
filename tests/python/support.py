"""Helpers shared by the interop tests: event payloads, bounded reading, REST look-ups."""

import asyncio
import hashlib
import json
import time
import urllib.request

# Every wait is bounded: a hang fails the test instead of blocking CI.
READ_TIMEOUT_S = 60
# get_segment_slice_async answers within about 1 s (an empty slice when nothing is ready); this
# only guards against a call that never answers.
SLICE_CALL_TIMEOUT_S = 30


def filler(key, seq):
    """Deterministic bytes of varying length (0..199) for event `seq` of `key`."""
    digest = hashlib.sha256(("%s/%d" % (key, seq)).encode()).digest()
    return (digest * 7)[: digest[0] % 200]


def make_event(key, seq):
    return ("%s:%06d:" % (key, seq)).encode() + filler(key, seq)


def parse_event(data):
    """(key, seq) of an event made by make_event; asserts that its filler is intact."""
    data = bytes(data)
    key, seq, rest = data.split(b":", 2)
    key, seq = key.decode(), int(seq)
    assert rest == filler(key, seq), "corrupt payload for %s/%d: %r" % (key, seq, data[:80])
    return key, seq


async def next_slice(reader):
    """The next segment slice's events as a list of bytes; the slice is released."""
    sl = await asyncio.wait_for(reader.get_segment_slice_async(), SLICE_CALL_TIMEOUT_S)
    events = [bytes(e.data()) for e in sl]
    reader.release_segment(sl)
    return events


async def read_events(reader, count=None, until=None, timeout_s=READ_TIMEOUT_S, stop_at=None):
    """Reads whole slices until `count` events, `until(events)` or time-out (an AssertionError).

    With `stop_at`, stops exactly after that many events, even in the middle of a slice (the
    rest of the slice is released back to the reader unread).
    """
    events = []
    deadline = time.monotonic() + timeout_s
    while True:
        if stop_at is not None and len(events) >= stop_at:
            return events
        if count is not None and len(events) >= count:
            return events
        if until is not None and until(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(
                "timed out after %s s with %d events read (count=%s)" % (timeout_s, len(events), count)
            )
        sl = await asyncio.wait_for(reader.get_segment_slice_async(), SLICE_CALL_TIMEOUT_S)
        for e in sl:
            events.append(bytes(e.data()))
            if stop_at is not None and len(events) >= stop_at:
                break
        reader.release_segment(sl)


async def read_nothing_for(reader, seconds):
    """Reads for `seconds` and returns whatever came (expected: nothing)."""
    events = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        events.extend(await next_slice(reader))
    return events


def run(coro):
    return asyncio.run(coro)


def rest_get(server, path):
    with urllib.request.urlopen(server.rest_url + path, timeout=30) as resp:
        return json.load(resp)


def scaling_events(server, scope, stream):
    now_ms = int(time.time() * 1000)
    path = "/v1/scopes/%s/streams/%s/scaling-events?from=0&to=%d" % (scope, stream, now_ms + 3600_000)
    return rest_get(server, path)["scalingEvents"]


def check_per_key_order(events, expected_counts):
    """Every key's events exactly once and in order: seq 0, 1, ... expected_counts[key]-1."""
    by_key = {}
    for data in events:
        key, seq = parse_event(data)
        by_key.setdefault(key, []).append(seq)
    assert sorted(by_key) == sorted(expected_counts), "keys read differ from keys written"
    for key, seqs in by_key.items():
        assert seqs == list(range(expected_counts[key])), "key %s read as %s" % (key, seqs)
    return by_key
