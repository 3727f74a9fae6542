"""The embedded broker's held PUBACKs: sent once the batch is durable, in order, only for the
messages that owe one, never to a connection that is gone; a failed batch ends its publishers'
connections as a DISCONNECT (no last will) so that they resend."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.session import INCOMING, OUTGOING

from vigil.runtimes.embedded.access import BrokerAccess
from vigil.runtimes.embedded.broker import BrokerTap, HeldPuback, TappedBroker, broker_config
from vigil.shell.mqtt.message import Message

ANONYMOUS = BrokerAccess.anonymous_for_development()
VITALS = "vigil/v1/devices/wr-1/vitals"


class FakeHandler:
    """The parts of amqtt's BrokerProtocolHandler that a held PUBACK uses."""

    def __init__(self, open_: bool = True) -> None:
        self.sent: list[int] = []
        self.disconnects: list[object] = []
        self.writer, self.session = self, object()
        self._write_lock = asyncio.Lock()
        self._reader_task = asyncio.get_running_loop().create_future()
        if not open_:
            self._reader_task.set_result(None)

    async def _send_packet(self, packet) -> None:  # noqa: ANN001
        self.sent.append(packet.variable_header.packet_id)

    def write(self, data: bytes) -> None:  # the writer: PUBACK packets, 4 bytes each (0x40 0x02 id)
        assert len(data) % 4 == 0 and all(data[i:i + 2] == b"\x40\x02" for i in range(0, len(data), 4))
        self.sent.extend(int.from_bytes(data[i + 2:i + 4], "big") for i in range(0, len(data), 4))

    async def drain(self) -> None:
        pass

    async def handle_disconnect(self, packet) -> None:  # noqa: ANN001
        self.disconnects.append(packet)


async def offered(tap: BrokerTap, *pubacks: HeldPuback | None) -> list[Message]:
    for puback in pubacks:
        await tap.offer(VITALS, b"{}", puback)
    return await tap.take(100, timeout=0.1)


async def test_pubacks_go_out_once_acknowledged_in_order_and_only_for_held_messages():
    a, b = FakeHandler(), FakeHandler()
    tap = BrokerTap()
    messages = await offered(tap, HeldPuback(a, 7), None, HeldPuback(b, 3), HeldPuback(a, 8))
    await asyncio.sleep(0.01)
    assert a.sent == b.sent == []  # taken by the processor is not stored
    assert [m.mid for m in messages] == [7, 0, 3, 8]
    tap.acknowledge(messages)
    await tap.acknowledged()
    assert a.sent == [7, 8] and b.sent == [3]


async def test_no_puback_on_a_connection_that_is_gone():
    """A publisher that reconnected sends the message again; the old connection gets nothing."""
    gone = FakeHandler(open_=False)
    tap = BrokerTap()
    tap.acknowledge(await offered(tap, HeldPuback(gone, 1)))
    await tap.acknowledged()
    assert gone.sent == []


async def test_a_failed_batch_ends_each_publishers_connection_once_as_a_disconnect_and_acknowledges_nothing():
    a, b = FakeHandler(), FakeHandler()
    tap = BrokerTap()
    tap.not_stored(await offered(tap, HeldPuback(a, 1), HeldPuback(a, 2), HeldPuback(b, 5), None))
    await tap.acknowledged()
    assert a.sent == b.sent == []
    assert len(a.disconnects) == len(b.disconnects) == 1
    assert isinstance(a.disconnects[0], DisconnectPacket)  # a DISCONNECT: amqtt sends no last will


async def test_the_broker_holds_only_device_qos1_publishes_and_only_when_asked():
    def publish(topic: str, qos: int = 1, direction: int = INCOMING) -> SimpleNamespace:
        return SimpleNamespace(topic=topic, qos=qos, direction=direction)

    holding = TappedBroker(broker_config("127.0.0.1", 1), BrokerTap(), access=ANONYMOUS)
    assert holding._holds(publish(VITALS)) and holding._holds(publish("vigil/v1/devices/wr-1/status"))
    assert not holding._holds(publish(VITALS, qos=0))
    assert not holding._holds(publish(VITALS, direction=OUTGOING))
    assert not holding._holds(publish("elsewhere/chat"))  # not ours: amqtt acknowledges it as usual
    assert not holding._holds(publish("vigil/v1/devices/wr-1/vitals/extra"))
    assert not TappedBroker(broker_config("127.0.0.1", 1), BrokerTap(hold_pubacks=False), access=ANONYMOUS)._holds(publish(VITALS))
    assert not TappedBroker(broker_config("127.0.0.1", 1), access=ANONYMOUS)._holds(publish(VITALS))  # a bare broker
