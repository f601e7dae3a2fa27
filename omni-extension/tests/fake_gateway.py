"""A stand-in gateway for the worker's unit tests: real gRPC (grpc.aio) and real WebSocket servers on
loopback, with an in-memory store. The contract test (test_contract_gateway.py) uses the real one."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Optional

import grpc

from simgate.v1 import simgate_pb2, simgate_pb2_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Store:
    """What a gateway remembers across restarts (its 'Kafka')."""

    events: dict[str, simgate_pb2.Event] = field(default_factory=dict)
    receipts: list[str] = field(default_factory=list)  # every event id received, repeats included
    attempts: list[tuple[str, int]] = field(default_factory=list)  # (event id, Event.attempt) per receipt
    runs: list[str] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    retry_once: set[str] = field(default_factory=set)
    tokens: list[str] = field(default_factory=list)
    run_ends: dict[str, simgate_pb2.RunEnd] = field(default_factory=dict)
    # run id -> (gRPC status name, simgate-error-code): StartRun/EndRun refused the way the gateway does
    refuse_runs: dict[str, tuple[str, str]] = field(default_factory=dict)
    hold: bool = False  # receive but never answer (a gateway that hangs before acking)

    def answer(self, event: simgate_pb2.Event) -> Optional[simgate_pb2.Ack]:
        self.receipts.append(event.event_id)
        self.attempts.append((event.event_id, event.attempt))
        if self.hold:
            return None
        ack = simgate_pb2.Ack(event_id=event.event_id, sequence=event.sequence)
        if event.event_id in self.reject:
            ack.rejected.code, ack.rejected.message = "GW_ERR_TEST", "rejected by the test"
        elif event.event_id in self.retry_once:
            self.retry_once.discard(event.event_id)
            ack.retry_later.code, ack.retry_later.retry_after_ms = "GW_ERR_BUSY", 30
        elif event.event_id in self.events:
            ack.duplicate.record.topic = "parking-entries"
        else:
            self.events[event.event_id] = event
            ack.accepted.record.topic = "parking-entries"
        return ack

    def run(self, kind: str, run_id: str) -> simgate_pb2.RunAck:
        self.runs.append(f"{kind}:{run_id}")
        return simgate_pb2.RunAck(run_id=run_id, accepted=simgate_pb2.RecordLocation(topic="simgate-runs"))


class _Ingest(simgate_pb2_grpc.IngestServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def StreamEvents(self, request_iterator, context):
        self.store.tokens.append(dict(context.invocation_metadata()).get("authorization", ""))
        async for event in request_iterator:
            ack = self.store.answer(event)
            if ack is not None:
                yield ack

    async def _refuse(self, run_id: str, context) -> None:
        refusal = self.store.refuse_runs.get(run_id)
        if refusal is not None:
            status, code = refusal
            context.set_trailing_metadata((("simgate-error-code", code),))
            await context.abort(getattr(grpc.StatusCode, status), f"{code}: refused by the test")

    async def StartRun(self, request, context):
        await self._refuse(request.run_id, context)
        return self.store.run("start", request.run_id)

    async def EndRun(self, request, context):
        await self._refuse(request.run_id, context)
        self.store.run_ends[request.run_id] = request
        return self.store.run("end", request.run_id)


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class FakeGrpcGateway:
    """start()/kill() may be called repeatedly on the same port; the store survives."""

    def __init__(self, store: Optional[Store] = None, port: Optional[int] = None,
                 tls: Optional[tuple[bytes, bytes]] = None, host: str = "127.0.0.1") -> None:
        self.store = store or Store()
        self.port = port or free_port()
        self.address = f"{host}:{self.port}"
        self.tls = tls  # (private key PEM, certificate PEM)
        self._loop = _LoopThread()
        self._server: Optional[grpc.aio.Server] = None

    def start(self) -> "FakeGrpcGateway":
        async def up() -> grpc.aio.Server:
            server = grpc.aio.server()
            simgate_pb2_grpc.add_IngestServicer_to_server(_Ingest(self.store), server)
            if self.tls:
                server.add_secure_port(self.address, grpc.ssl_server_credentials([self.tls]))
            else:
                server.add_insecure_port(self.address)
            await server.start()
            return server

        self._server = self._loop.call(up())
        return self

    def kill(self) -> None:
        if self._server is not None:
            self._loop.call(self._server.stop(grace=None))
            self._server = None

    def close(self) -> None:
        self.kill()
        self._loop.close()


def self_signed_certificate(directory, host: str = "localhost") -> tuple[bytes, bytes]:
    """A throw-away key and certificate for a TLS test server (the openssl command line tool)."""
    import shutil
    import subprocess
    from pathlib import Path

    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests need the openssl command (apt-get install openssl)"
    key, cert = Path(directory) / "key.pem", Path(directory) / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key.read_bytes(), cert.read_bytes()


class FakeWsGateway:
    def __init__(self, store: Optional[Store] = None) -> None:
        self.store = store or Store()
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/v1/ws"
        self._loop = _LoopThread()
        self._server = None

    async def _handle(self, ws) -> None:
        self.store.tokens.append(ws.request.headers.get("Authorization", ""))
        async for message in ws:
            frame = simgate_pb2.ClientFrame.FromString(message)
            kind = frame.WhichOneof("body")
            if kind == "event":
                ack = self.store.answer(frame.event)
                if ack is not None:
                    await ws.send(simgate_pb2.ServerFrame(ack=ack).SerializeToString())
            elif kind in ("run_start", "run_end"):
                run_id = getattr(frame, kind).run_id
                run_ack = self.store.run(kind.split("_")[1], run_id)
                await ws.send(simgate_pb2.ServerFrame(run_ack=run_ack).SerializeToString())

    def start(self) -> "FakeWsGateway":
        from websockets.asyncio.server import serve

        async def up():
            return await serve(self._handle, "127.0.0.1", self.port)

        self._server = self._loop.call(up())
        return self

    def kill(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None

            async def down():
                server.close()
                await server.wait_closed()

            self._loop.call(down())

    def close(self) -> None:
        self.kill()
        self._loop.close()
