"""A gRPC stream the gateway has already finished (found by the fault matrix, `npm run faults --
kit-outage`: the gateway SIGKILLed under a running Kit worker): grpc.aio raises
asyncio.InvalidStateError("RPC already finished") from write() and read(). The transport must turn that
into ConnectionLost, like every other broken connection; before, it escaped the worker's session, the
worker thread ended, and everything after it stayed in the spool until the extension was restarted."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from fake_gateway import free_port
from simgate.parking.transports import ConnectionLost, GrpcTransport
from simgate.v1 import simgate_pb2, simgate_pb2_grpc


class EndsAtOnce(simgate_pb2_grpc.IngestServicer):
    """Finishes every event stream with OK as soon as it opens (a gateway going away, seen from the
    client as a call that has ended)."""

    async def StreamEvents(self, request_iterator, context):  # noqa: N802 - gRPC's name
        return
        yield  # pragma: no cover - makes this an async generator


def test_writing_and_reading_on_a_finished_call_is_a_lost_connection() -> None:
    async def scenario() -> None:
        server = grpc.aio.server()
        simgate_pb2_grpc.add_IngestServicer_to_server(EndsAtOnce(), server)
        port = free_port()
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        transport = GrpcTransport(f"127.0.0.1:{port}")
        try:
            await transport.connect()
            with pytest.raises(ConnectionLost):
                await transport.next_ack()  # the stream ended: EOF
            with pytest.raises(ConnectionLost):
                await transport.send_event(simgate_pb2.Event(event_id="run-1-000001", run_id="run-1"))
            with pytest.raises(ConnectionLost):
                await transport.next_ack()
        finally:
            await transport.close()
            await server.stop(None)

    asyncio.run(scenario())
