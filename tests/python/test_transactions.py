"""Transactions: committed events are read, contiguously and in commit order; aborted never."""

import pravega_client
import pytest

from support import make_event, parse_event, read_events, run

KEYS = ["t%d" % i for i in range(4)]


def write_txn(txn, tag, count):
    for seq in range(count):
        for key in KEYS:
            txn.write_event_bytes(make_event("%s-%s" % (tag, key), seq), key)


def test_commit_and_abort(manager, scope):
    manager.create_stream(scope, "txn", 2)
    txn_writer = manager.create_transaction_writer(scope, "txn", 1)

    late = txn_writer.begin_txn()  # begun first, committed last
    committed = txn_writer.begin_txn()
    aborted = txn_writer.begin_txn()
    assert late.is_open() and committed.is_open() and aborted.is_open()
    assert len({late.get_txn_id(), committed.get_txn_id(), aborted.get_txn_id()}) == 3

    write_txn(late, "late", 25)
    write_txn(committed, "committed", 25)
    write_txn(aborted, "aborted", 25)

    aborted.abort()
    assert not aborted.is_open()
    with pytest.raises(pravega_client.TxnFailedException):
        aborted.commit()

    committed.commit()
    assert not committed.is_open()
    assert not txn_writer.get_txn(committed.get_txn_id()).is_open()
    with pytest.raises(pravega_client.TxnFailedException):
        committed.write_event_bytes(b"after commit", KEYS[0])
    late.commit()

    # A plain event per key after the commits: once every key's marker is read, everything
    # committed before it on that key's segment has been read too.
    writer = manager.create_writer(scope, "txn")
    for key in KEYS:
        writer.write_event_bytes(make_event("marker-" + key, 0), key)
    writer.flush()

    group = manager.create_reader_group("rg", scope, "txn")
    reader = group.create_reader("r")

    def all_markers(events):
        return sum(1 for e in events if e.startswith(b"marker-")) == len(KEYS)

    events = run(read_events(reader, until=all_markers))
    reader.reader_offline()

    by_key = {key: [] for key in KEYS}
    for data in events:
        name, seq = parse_event(data)
        tag, key = name.rsplit("-", 1)
        by_key[key].append("%s:%d" % (tag, seq))
    expected = (
        ["committed:%d" % s for s in range(25)] + ["late:%d" % s for s in range(25)] + ["marker:0"]
    )
    for key in KEYS:
        # Each transaction's events are contiguous, in commit order, and none of the aborted.
        assert by_key[key] == expected, "key %s read as %s" % (key, by_key[key])
