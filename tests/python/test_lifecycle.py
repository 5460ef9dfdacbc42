"""Deleting reader groups, streams and scopes, and the errors the controller answers with."""

import uuid

import pytest

from support import make_event, read_events, run


def test_delete_stream_and_scope(manager, scope):
    manager.create_stream(scope, "doomed", 2)
    manager.create_stream(scope, "kept", 1)
    writer = manager.create_writer(scope, "doomed")
    writer.write_event_bytes(make_event("k", 0), "k")
    writer.flush()
    group = manager.create_reader_group("rg", scope, "doomed")
    reader = group.create_reader("r")
    assert len(run(read_events(reader, count=1))) == 1
    reader.reader_offline()
    manager.delete_reader_group("rg", scope)

    with pytest.raises(ValueError, match="Not Sealed"):
        manager.delete_stream(scope, "doomed")
    with pytest.raises(ValueError, match="not empty"):
        manager.delete_scope(scope)

    assert manager.seal_stream(scope, "doomed") is True
    assert manager.delete_stream(scope, "doomed") is True
    # A deleted stream takes its mark stream along; the kept one keeps its own.
    assert sorted(manager.list_stream(scope)) == ["_MARKkept", "kept"]
    assert manager.delete_stream(scope, "doomed") is False  # already gone

    manager.seal_stream(scope, "kept")
    manager.delete_stream(scope, "kept")
    assert manager.list_stream(scope) == []
    assert manager.delete_scope(scope) is True
    assert scope not in manager.list_scope()
    assert manager.delete_scope(scope) is False

    # The names are free again.
    assert manager.create_scope(scope) is True
    assert manager.create_stream(scope, "doomed", 1) is True


def test_stream_in_missing_scope_is_an_error(manager):
    missing = "nosuch" + uuid.uuid4().hex[:12]
    with pytest.raises(ValueError, match="Not Found"):
        manager.create_stream(missing, "s", 1)
    assert missing not in manager.list_scope()


def test_writing_to_unknown_stream_is_an_error(manager, scope):
    writer = manager.create_writer(scope, "nosuchstream")
    with pytest.raises(ValueError):
        writer.write_event_bytes(b"nobody reads this", "k")
        writer.flush()
    assert manager.list_stream(scope) == []


def test_sealing_unknown_stream_is_an_error(manager, scope):
    with pytest.raises(ValueError, match="Not Found"):
        manager.seal_stream(scope, "nosuchstream")


def test_invalid_stream_configurations_are_rejected(manager, scope):
    with pytest.raises(ValueError):
        manager.create_stream(scope, "zero", 0)
    with pytest.raises(ValueError):
        manager.create_stream(scope, "bad/name", 1)
    assert manager.list_stream(scope) == []
