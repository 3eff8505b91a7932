"""The command context: how correlation and causation ids are filled in and propagated."""

from __future__ import annotations

import uuid

import pytest

from esgen.runtime import CommandContext, RecordedEvent, command_context, current_context


def test_a_new_context_starts_a_conversation() -> None:
    assert current_context() is None
    with command_context(user="ann") as context:
        assert current_context() is context
        assert context.correlation_id == context.causation_id
        uuid.UUID(context.causation_id)
        assert dict(context.metadata) == {
            "correlation_id": context.correlation_id,
            "causation_id": context.causation_id,
            "user": "ann",
        }
    assert current_context() is None


def test_ids_can_be_propagated() -> None:
    request, command = uuid.uuid4(), uuid.uuid4()
    with command_context(correlation_id=request, causation_id=command) as context:
        assert (context.correlation_id, context.causation_id) == (str(request), str(command))


def test_nested_contexts_keep_the_conversation_and_extend_the_extras() -> None:
    with command_context(correlation_id="req", user="ann", tenant="t1") as outer:
        with command_context(user="system") as inner:
            assert inner.correlation_id == "req"
            assert inner.causation_id != outer.causation_id
            assert dict(inner.extra) == {"user": "system", "tenant": "t1"}
        assert current_context() is outer


def test_a_context_caused_by_an_event() -> None:
    cause = RecordedEvent(
        1,
        "s",
        1,
        "Opened",
        1,
        "{}",
        "12345678123456781234567812345678",
        '{"correlation_id": "req-9", "causation_id": "cmd-1"}',
        "2024-01-01T00:00:00+00:00",
    )
    with command_context(caused_by=cause) as context:
        assert context.correlation_id == "req-9"
        assert context.causation_id == str(cause.event_id)


def test_a_prepared_context_is_activated_as_is() -> None:
    prepared = CommandContext.new(correlation_id="c", causation_id="k", user="ann")
    with command_context(prepared) as active:
        assert active is prepared
    with pytest.raises(TypeError, match="either"), command_context(prepared, user="eve"):
        pass


def test_the_ids_cannot_be_smuggled_in_as_extras() -> None:
    with pytest.raises(ValueError, match="correlation_id"):
        CommandContext("c", "k", {"correlation_id": "x"})
