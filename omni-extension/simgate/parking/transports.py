"""The two ways to reach the gateway, behind one small interface used by the worker.

- gRPC: ``Ingest.StreamEvents`` (bidirectional stream, one Ack per Event, any order) through
  ``grpc.aio``, and the unary ``StartRun`` / ``EndRun`` calls;
- WebSocket: binary frames, one ``ClientFrame`` per message up, one ``ServerFrame`` per message down.
Both send the token as ``authorization: Bearer <token>``. Any failure of the connection surfaces as
``ConnectionLost``; the worker then reconnects and resends what was not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional, Protocol

from simgate.v1 import simgate_pb2

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ConnectionLost(Exception):
    """The connection to the gateway failed or closed; resend what is unacknowledged."""


class Transport(Protocol):
    name: str

    async def connect(self) -> None: ...
    async def send_event(self, event: simgate_pb2.Event) -> None: ...
    async def next_ack(self) -> simgate_pb2.Ack: ...
    async def run_call(self, frame: simgate_pb2.ClientFrame) -> simgate_pb2.RunAck: ...
    async def close(self) -> None: ...


def _auth_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


class GrpcTransport:
    name = "grpc"

    def __init__(self, address: str, token: str = "", connect_timeout_s: float = 5.0, call_timeout_s: float = 30.0) -> None:
        self.address = address
        self.token = token
        self.connect_timeout_s = connect_timeout_s
        self.call_timeout_s = call_timeout_s
        self._channel = None
        self._stub = None
        self._call = None

    async def connect(self) -> None:
        import grpc
        from simgate.v1 import simgate_pb2_grpc

        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Fail fast on a dead gateway instead of waiting for TCP timeouts.
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.enable_retries", 0),
        ]
        self._channel = grpc.aio.insecure_channel(self.address, options=options)
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self.connect_timeout_s)
        except (asyncio.TimeoutError, grpc.RpcError) as exc:
            await self.close()
            raise ConnectionLost(f"gRPC gateway {self.address} not reachable ({type(exc).__name__})") from None
        self._stub = simgate_pb2_grpc.IngestStub(self._channel)
        self._call = self._stub.StreamEvents(metadata=_auth_metadata(self.token))

    async def send_event(self, event: simgate_pb2.Event) -> None:
        import grpc

        if self._call is None:
            raise ConnectionLost("not connected")
        try:
            await self._call.write(event)
        # InvalidStateError: "RPC already finished" (the gateway ended the call, e.g. it was killed).
        except (grpc.RpcError, grpc.aio.UsageError, RuntimeError, asyncio.InvalidStateError) as exc:
            raise ConnectionLost(f"gRPC write failed: {_describe(exc)}") from None

    async def next_ack(self) -> simgate_pb2.Ack:
        import grpc

        if self._call is None:
            raise ConnectionLost("not connected")
        try:
            ack = await self._call.read()
        except (grpc.RpcError, RuntimeError, asyncio.InvalidStateError) as exc:
            raise ConnectionLost(f"gRPC stream failed: {_describe(exc)}") from None
        if ack is grpc.aio.EOF:
            raise ConnectionLost("gRPC stream closed by the gateway")
        return ack

    async def run_call(self, frame: simgate_pb2.ClientFrame) -> simgate_pb2.RunAck:
        import grpc

        if self._stub is None:
            raise ConnectionLost("not connected")
        kind = frame.WhichOneof("body")
        method = self._stub.StartRun if kind == "run_start" else self._stub.EndRun
        message = frame.run_start if kind == "run_start" else frame.run_end
        try:
            return await method(message, metadata=_auth_metadata(self.token), timeout=self.call_timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return simgate_pb2.RunAck(
                    run_id=message.run_id, rejected=simgate_pb2.Rejected(code=f"GRPC_{code.name}", message=_describe(exc))
                )
            raise ConnectionLost(f"gRPC {kind} failed: {_describe(exc)}") from None

    async def close(self) -> None:
        call, channel = self._call, self._channel
        self._call = self._stub = self._channel = None
        if call is not None:
            call.cancel()
            try:  # let the cancellation complete on this loop before the channel and the loop go away
                await asyncio.wait_for(call.code(), 1.0)
            except Exception:
                pass
        if channel is not None:
            await channel.close(grace=None)
            # gRPC core completes the channel's internal operations (connectivity watches) a moment
            # later, on this loop; give them the chance before the worker's loop may be closed.
            await asyncio.sleep(0.05)


class WebSocketTransport:
    name = "ws"

    def __init__(self, url: str, token: str = "", connect_timeout_s: float = 5.0, call_timeout_s: float = 30.0) -> None:
        self.url = url
        self.token = token
        self.connect_timeout_s = connect_timeout_s
        self.call_timeout_s = call_timeout_s
        self._ws = None
        self._acks: asyncio.Queue[simgate_pb2.Ack | BaseException] = asyncio.Queue()
        self._run_acks: dict[str, asyncio.Future[simgate_pb2.RunAck]] = {}
        self._reader: Optional[asyncio.Task[None]] = None
        self.connection_errors: list[simgate_pb2.Rejected] = []

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            self._ws = await asyncio.wait_for(
                connect(self.url, additional_headers=headers, max_size=MAX_MESSAGE_BYTES, open_timeout=self.connect_timeout_s),
                self.connect_timeout_s + 1,
            )
        except (OSError, asyncio.TimeoutError, Exception) as exc:
            raise ConnectionLost(f"WebSocket gateway {self.url} not reachable ({_describe(exc)})") from None
        self._acks = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        ws = self._ws
        try:
            async for message in ws:  # type: ignore[union-attr]
                if isinstance(message, str):
                    continue
                frame = simgate_pb2.ServerFrame.FromString(message)
                kind = frame.WhichOneof("body")
                if kind == "ack":
                    self._acks.put_nowait(frame.ack)
                elif kind == "run_ack":
                    future = self._run_acks.pop(frame.run_ack.run_id, None)
                    if future is not None and not future.done():
                        future.set_result(frame.run_ack)
                elif kind == "error":  # a frame the gateway could not decode at all: no event to answer
                    self.connection_errors = (self.connection_errors + [frame.error])[-10:]
                    log.error("simgate gateway could not decode a frame: %s %s", frame.error.code, frame.error.message)
            error: BaseException = ConnectionLost("WebSocket closed by the gateway")
        except Exception as exc:
            error = ConnectionLost(f"WebSocket failed: {_describe(exc)}")
        self._acks.put_nowait(error)
        for future in self._run_acks.values():
            if not future.done():
                future.set_exception(error)
        self._run_acks.clear()

    async def _send(self, frame: simgate_pb2.ClientFrame) -> None:
        if self._ws is None:
            raise ConnectionLost("not connected")
        try:
            await self._ws.send(frame.SerializeToString())
        except Exception as exc:
            raise ConnectionLost(f"WebSocket send failed: {_describe(exc)}") from None

    async def send_event(self, event: simgate_pb2.Event) -> None:
        await self._send(simgate_pb2.ClientFrame(event=event))

    async def next_ack(self) -> simgate_pb2.Ack:
        item = await self._acks.get()
        if isinstance(item, BaseException):
            self._acks.put_nowait(item)  # every later reader sees the failure too
            raise item
        return item

    async def run_call(self, frame: simgate_pb2.ClientFrame) -> simgate_pb2.RunAck:
        kind = frame.WhichOneof("body")
        run_id = frame.run_start.run_id if kind == "run_start" else frame.run_end.run_id
        future: asyncio.Future[simgate_pb2.RunAck] = asyncio.get_running_loop().create_future()
        self._run_acks[run_id] = future
        await self._send(frame)
        try:
            return await asyncio.wait_for(future, self.call_timeout_s)
        except asyncio.TimeoutError:
            raise ConnectionLost(f"no answer to {kind} within {self.call_timeout_s}s") from None

    async def close(self) -> None:
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if ws is not None:
            try:
                await ws.close()
            except Exception:
                pass
        if reader is not None:
            reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, Exception):
                pass


def _describe(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    code = getattr(exc, "code", None)
    if callable(details) and callable(code):
        try:
            return f"{code().name}: {details()}"
        except Exception:
            pass
    return f"{type(exc).__name__}: {exc}"
