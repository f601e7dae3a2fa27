"""Settings that guard the channel (TLS, no token in clear text beyond loopback), the gateway's error codes
read from its trailing metadata, and a TLS channel to a real gRPC server."""

from __future__ import annotations

import random
import time

import pytest

from fake_gateway import FakeGrpcGateway, self_signed_certificate
from simgate.parking.settings import ParkingSettings, SettingsError
from simgate.parking.spool import DiskSpool
from simgate.parking.transports import GrpcTransport
from simgate.parking.worker import GatewayWorker
from simgate.v1 import simgate_pb2


@pytest.mark.parametrize("address", ["10.0.0.5:50051", "gateway.example:50051", "dns:///gw.internal:443", "[2001:db8::1]:50051"])
def test_a_token_is_refused_on_an_insecure_channel_beyond_loopback(address) -> None:
    with pytest.raises(SettingsError, match=r"token: refusing to send the token in clear text to .*set tls = true"):
        ParkingSettings.from_mapping({"gatewayAddress": address, "token": "t0k"})


@pytest.mark.parametrize("settings", [
    {"gatewayAddress": "127.0.0.1:50051", "token": "t"},
    {"gatewayAddress": "localhost:50051", "token": "t"},
    {"gatewayAddress": "[::1]:50051", "token": "t"},
    {"gatewayAddress": "gateway.example:50051", "token": "t", "tls": True},
    {"gatewayAddress": "gateway.example:50051"},  # no token: nothing secret to leak
    {"transport": "ws", "gatewayWsUrl": "wss://gateway.example/v1/events", "token": "t"},
])
def test_a_token_is_allowed_on_tls_or_loopback(settings) -> None:
    ParkingSettings.from_mapping(settings)


def test_a_token_over_plain_websocket_beyond_loopback_is_refused() -> None:
    with pytest.raises(SettingsError, match="use a wss:// gatewayWsUrl"):
        ParkingSettings.from_mapping({"transport": "ws", "gatewayWsUrl": "ws://gateway.example/v1/events", "token": "t"})


@pytest.mark.parametrize("key,value", [("outboxFullPolicy", "block"), ("shutdownFlushMs", 3000), ("captureDevice", "gpu")])
def test_main_thread_settings_are_validated(key, value) -> None:
    with pytest.raises(SettingsError, match=key):
        ParkingSettings.from_mapping({key: value})


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    assert condition()


def test_a_refused_run_carries_the_gateways_own_error_code(tmp_path) -> None:
    gateway = FakeGrpcGateway().start()
    gateway.store.refuse_runs["bad-run"] = ("INVALID_ARGUMENT", "GW_ERR_RUN_ID_INVALID")
    answers: dict[str, simgate_pb2.RunAck] = {}
    try:
        worker = GatewayWorker(lambda: GrpcTransport(gateway.address), DiskSpool(tmp_path, 1 << 20, 100),
                               on_ack=lambda key, ack: answers.setdefault(key, ack), rng=random.Random(1))
        worker.start()
        worker.submit(simgate_pb2.RunStart(run_id="bad-run"))
        wait_for(lambda: "run-start:bad-run" in answers)
        rejected = answers["run-start:bad-run"].rejected
        assert rejected.code == "GW_ERR_RUN_ID_INVALID"  # not an invented GRPC_* code
        assert "refused by the test" in rejected.message
        worker.stop(0.5)
        worker.join(5)
    finally:
        gateway.close()


def test_grpc_over_tls_delivers_and_sends_the_token(tmp_path) -> None:
    key, cert = self_signed_certificate(tmp_path, "localhost")
    gateway = FakeGrpcGateway(tls=(key, cert), host="localhost").start()
    try:
        worker = GatewayWorker(lambda: GrpcTransport(gateway.address, "t0k", tls=True, root_certs=cert),
                               DiskSpool(tmp_path / "spool", 1 << 20, 100), rng=random.Random(1))
        worker.start()
        worker.submit(simgate_pb2.RunStart(run_id="tls-1"))
        worker.submit(simgate_pb2.Event(event_id="tls-1-000001", run_id="tls-1", sequence=1, event_type="parking.entry"))
        wait_for(lambda: worker.pending() == 0 and len(gateway.store.events) == 1)
        assert gateway.store.tokens == ["Bearer t0k"]
        worker.stop(0.5)
        worker.join(5)
        # the same server without TLS on the client side: no connection, nothing delivered in clear text
        plain = GatewayWorker(lambda: GrpcTransport(gateway.address, "t0k", connect_timeout_s=0.5),
                              DiskSpool(tmp_path / "spool2", 1 << 20, 100), rng=random.Random(1))
        plain.start()
        plain.submit(simgate_pb2.RunStart(run_id="tls-2"))
        wait_for(lambda: plain.stats.connect_failures >= 1)
        assert gateway.store.runs == ["start:tls-1"] and gateway.store.tokens == ["Bearer t0k"]
        plain.stop(0.2)
        plain.join(5)
    finally:
        gateway.close()
