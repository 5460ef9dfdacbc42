"""Byte streams: write, seek (all three whences), read back, truncate."""

import hashlib

import pytest


def pattern(size):
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(block.to_bytes(8, "big")).digest()
        block += 1
    return bytes(out[:size])


def read_exactly(stream, size):
    """readinto until `size` bytes (a read may return fewer); bounded by the number of calls."""
    out = bytearray()
    for _ in range(1000):
        if len(out) >= size:
            break
        buf = bytearray(size - len(out))
        n = stream.readinto(buf)
        assert n > 0, "readinto returned %r at %d of %d bytes" % (n, len(out), size)
        out += buf[:n]
    return bytes(out)


def test_write_seek_read_and_truncate(manager, scope):
    manager.create_stream(scope, "bytes", 1)
    stream = manager.create_byte_stream(scope, "bytes")
    # 5 MiB in writes of uneven sizes, so that reads cross write and server read boundaries.
    data = pattern(5 * 1024 * 1024 + 12345)
    pos = 0
    for size in [1, 1000, 64 * 1024, 3 * 1024 * 1024 + 7]:
        assert stream.write(data[pos : pos + size]) == size
        pos += size
    assert stream.write(data[pos:]) == len(data) - pos
    stream.flush()

    assert stream.current_head_offset() == 0
    assert stream.current_tail_offset() == len(data)
    assert stream.seekable()

    assert stream.seek(0, 0) == 0
    assert read_exactly(stream, len(data)) == data
    assert stream.tell() == len(data)

    assert stream.seek(1_000_000, 0) == 1_000_000
    assert read_exactly(stream, 3 * 1024 * 1024) == data[1_000_000 : 1_000_000 + 3 * 1024 * 1024]
    here = stream.tell()
    assert here == 1_000_000 + 3 * 1024 * 1024
    assert stream.seek(-500_000, 1) == here - 500_000
    assert read_exactly(stream, 1000) == data[here - 500_000 : here - 499_000]
    assert stream.seek(-4096, 2) == len(data) - 4096
    assert read_exactly(stream, 4096) == data[-4096:]

    # A second handle sees the same bytes.
    other = manager.create_byte_stream(scope, "bytes")
    other.seek(2_000_000, 0)
    assert read_exactly(other, 100_000) == data[2_000_000:2_100_000]

    # Truncation moves the head; bytes before it are gone, bytes after it are intact.
    cut = 3_000_000
    stream.truncate(cut)
    assert stream.current_head_offset() == cut
    assert stream.current_tail_offset() == len(data)
    stream.seek(cut - 10, 0)
    with pytest.raises(OSError, match="Truncated"):
        stream.readinto(bytearray(10))
    stream.seek(cut, 0)
    assert read_exactly(stream, 200_000) == data[cut : cut + 200_000]

    # Appending after a truncation continues at the tail.
    extra = pattern(70_000)[::-1]
    assert stream.write(extra) == len(extra)
    stream.flush()
    assert stream.current_tail_offset() == len(data) + len(extra)
    stream.seek(len(data) - 100, 0)
    assert read_exactly(stream, 100 + len(extra)) == data[-100:] + extra
