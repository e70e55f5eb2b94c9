"""New messages from several instances reach members in seq order: one that
comes ahead of a missing seq waits a moment for it, and never longer."""

import asyncio

from gortc.delivery.events import created_message_seq
from gortc.hub.ordering import SeqOrder

TOPIC = "group:g1"


def recorder() -> tuple[list[bytes], SeqOrder]:
    heard: list[bytes] = []
    return heard, SeqOrder(lambda _topic, payload: heard.append(payload), hold_seconds=0.05)


async def test_a_message_ahead_of_a_missing_one_waits_for_it() -> None:
    heard, order = recorder()
    order.offer(TOPIC, 4, b"4")
    order.offer(TOPIC, 6, b"6")
    order.offer(TOPIC, 7, b"7")
    assert heard == [b"4"]
    order.offer(TOPIC, 5, b"5")
    assert heard == [b"4", b"5", b"6", b"7"]
    await asyncio.sleep(0.1)  # the cancelled wait lets nothing go twice
    assert heard == [b"4", b"5", b"6", b"7"] and order.released_late == 0


async def test_a_seq_that_never_comes_stalls_nobody_past_the_hold() -> None:
    heard, order = recorder()
    order.offer(TOPIC, 1, b"1")
    order.offer(TOPIC, 4, b"4")
    order.offer(TOPIC, 3, b"3")
    await asyncio.sleep(0.1)
    assert heard == [b"1", b"3", b"4"] and order.released_late == 2
    order.offer(TOPIC, 5, b"5")  # and the next one goes at once
    order.offer(TOPIC, 2, b"2")  # the one given up on, heard late rather than never
    assert heard[3:] == [b"5", b"2"]


async def test_topics_wait_apart_and_a_forgotten_topic_lets_nothing_go() -> None:
    heard, order = recorder()
    order.offer(TOPIC, 1, b"a1")
    order.offer("group:g2", 9, b"b9")
    order.offer(TOPIC, 3, b"a3")
    order.offer("group:g2", 10, b"b10")
    assert heard == [b"a1", b"b9", b"b10"]
    order.forget(TOPIC)
    await asyncio.sleep(0.1)
    assert heard == [b"a1", b"b9", b"b10"]


def test_only_new_messages_carry_a_seq() -> None:
    created = b'{"type":"message.created","message":{"id":"m1","seq":42,"body":"hi"}}'
    assert created_message_seq(created) == 42
    assert created_message_seq(b'{"type":"message.updated","message":{"seq":42}}') is None
    assert created_message_seq(b'{"type":"presence","online":[]}') is None
