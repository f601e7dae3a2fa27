"""The extension's settings: defaults, parsing and validation (plain Python, no omni imports).

Kit keeps extension settings under ``/exts/simgate.parking/<key>`` (carb.settings); the defaults are
declared in ``config/extension.toml`` under ``[settings]``. ``ParkingSettings.from_mapping`` takes
the flat ``{key: value}`` dictionary read from there, fills what is missing with the defaults below,
normalises units and fails fast with the name of the bad key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

SETTINGS_ROOT = "/exts/simgate.parking"

TRANSPORTS = ("grpc", "ws")
IMAGE_ENCODINGS = ("png", "jpeg", "raw")
DETECTION_MODES = ("auto", "trigger", "position")
OUTBOX_FULL_POLICIES = ("spill", "drop-oldest")
CAPTURE_DEVICES = ("auto", "cuda", "cpu")
MAX_SHUTDOWN_FLUSH_MS = 1000  # on_shutdown runs on Kit's main thread: it waits at most this long


class SettingsError(ValueError):
    """A setting has a bad value; the message names the key."""


@dataclass(frozen=True)
class ParkingSettings:
    # Where the gateway listens. gRPC: host:port. WebSocket: a ws:// or wss:// URL.
    gateway_address: str = "127.0.0.1:50051"
    gateway_ws_url: str = "ws://127.0.0.1:8080/v1/events"
    transport: str = "grpc"
    # Bearer token sent with every call; empty means none. Never sent in clear text beyond loopback.
    token: str = ""
    # gRPC over TLS (the WebSocket transport uses TLS with a wss:// URL); optional PEM root certificates
    # (empty: the system's), e.g. for a private CA.
    tls: bool = False
    tls_root_certs_path: str = ""
    # Gate volumes (any boundable prim); camera i films gate i.
    gate_prim_paths: tuple[str, ...] = ("/World/Gates/Entry", "/World/Gates/Exit")
    camera_prim_paths: tuple[str, ...] = ("/World/Cameras/EntryCamera", "/World/Cameras/ExitCamera")
    # Cars are the children of this prim (their plate in the attribute simgate:carId).
    cars_root_path: str = "/World/Cars"
    # Parking slots are the children of this prim (their id in the attribute simgate:slotId).
    slots_root_path: str = "/World/Slots"
    # "trigger": PhysX trigger reports only; "position": per-update position check only;
    # "auto": both, the trigger report wins and the position check covers animated cars.
    detection: str = "auto"
    debounce_seconds: float = 1.0
    # The fastest a car moves (m/s): a car far from every gate is checked again only when it could have
    # reached one, so the per-update cost follows the cars near gates, not all cars.
    max_car_speed: float = 30.0
    image_encoding: str = "png"
    image_width: int = 1280
    image_height: int = 720
    jpeg_quality: int = 90
    # Where the gate camera's frame is copied on the update that takes it: "cuda" = on the GPU (a device-side
    # copy; the device-to-host copy happens on the worker), "cpu" = into a recycled host buffer on Kit's main
    # thread, "auto" = cuda where Warp finds a CUDA device (Kit on an RTX machine), else cpu.
    capture_device: str = "auto"
    # Bounded queues: the outbox between the simulation thread and the worker, the in-flight
    # window on the connection, and the on-disk spool used while the gateway is unreachable.
    outbox_capacity: int = 256
    # What a full outbox does (it never blocks the simulation): "spill" = the worker moves the queue to the
    # spool (dropping and counting the oldest only at twice the capacity); "drop-oldest" = drop and count.
    outbox_full_policy: str = "spill"
    max_in_flight: int = 32
    spool_dir: str = ""
    spool_max_bytes: int = 512 * 1024 * 1024
    spool_max_events: int = 10_000
    # How long a new instance waits for a spool directory another instance still holds, then refuses.
    spool_lock_wait_ms: int = 5_000
    reconnect_initial_ms: int = 200
    reconnect_max_ms: int = 10_000
    # How long on_shutdown lets the worker deliver before it spools the rest (at most 1000: Kit's main thread).
    shutdown_flush_ms: int = 800
    run_id_prefix: str = "omni"
    scenario: str = "parking-lot"
    # Optional recording of the run (a .simrec file); empty means no recording.
    recording_dir: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "ParkingSettings":
        values = dict(values or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        camel_to_field = {_camel(name): name for name in known}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            name = camel_to_field.get(key, key if key in known else None)
            if name is None:
                continue  # other extensions' or future keys: ignored, not fatal
            kwargs[name] = _coerce(name, raw, known[name].default)
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        _one_of("transport", self.transport, TRANSPORTS)
        _one_of("imageEncoding", self.image_encoding, IMAGE_ENCODINGS)
        _one_of("detection", self.detection, DETECTION_MODES)
        _one_of("outboxFullPolicy", self.outbox_full_policy, OUTBOX_FULL_POLICIES)
        _one_of("captureDevice", self.capture_device, CAPTURE_DEVICES)
        if not self.gate_prim_paths:
            raise SettingsError("gatePrimPaths: at least one gate prim path is needed")
        for key, paths in (("gatePrimPaths", self.gate_prim_paths), ("cameraPrimPaths", self.camera_prim_paths)):
            for path in paths:
                if not path.startswith("/"):
                    raise SettingsError(f"{key}: {path!r} is not an absolute prim path")
        if self.camera_prim_paths and len(self.camera_prim_paths) != len(self.gate_prim_paths):
            raise SettingsError("cameraPrimPaths: give one camera per gate (same order) or none")
        for key, value, low, high in (
            ("imageWidth", self.image_width, 16, 8192),
            ("imageHeight", self.image_height, 16, 8192),
            ("jpegQuality", self.jpeg_quality, 1, 100),
            ("outboxCapacity", self.outbox_capacity, 1, 1_000_000),
            ("maxInFlight", self.max_in_flight, 1, 10_000),
            ("spoolMaxEvents", self.spool_max_events, 1, 100_000_000),
            ("spoolMaxBytes", self.spool_max_bytes, 1024, 1 << 50),
            ("reconnectInitialMs", self.reconnect_initial_ms, 1, 3_600_000),
            ("reconnectMaxMs", self.reconnect_max_ms, 1, 3_600_000),
            ("shutdownFlushMs", self.shutdown_flush_ms, 0, MAX_SHUTDOWN_FLUSH_MS),
            ("spoolLockWaitMs", self.spool_lock_wait_ms, 0, 3_600_000),
        ):
            if not low <= value <= high:
                raise SettingsError(f"{key}: {value} is outside {low}..{high}")
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise SettingsError("reconnectMaxMs: must not be smaller than reconnectInitialMs")
        if not 0.1 <= self.max_car_speed <= 1000:
            raise SettingsError(f"maxCarSpeed: {self.max_car_speed} is outside 0.1..1000 (m/s)")
        if self.debounce_seconds < 0:
            raise SettingsError("debounceSeconds: must be >= 0")
        if self.transport == "ws" and not self.gateway_ws_url.startswith(("ws://", "wss://")):
            raise SettingsError("gatewayWsUrl: must start with ws:// or wss://")
        if self.transport == "grpc" and ":" not in self.gateway_address:
            raise SettingsError("gatewayAddress: expected host:port")
        if self.token and not self.channel_is_private():
            where = self.gateway_address if self.transport == "grpc" else self.gateway_ws_url
            fix = "set tls = true" if self.transport == "grpc" else "use a wss:// gatewayWsUrl"
            raise SettingsError(
                f"token: refusing to send the token in clear text to {where} (not a loopback address); {fix}, "
                "or reach the gateway through a loopback address (e.g. an SSH tunnel)"
            )

    def gateway_host(self) -> str:
        if self.transport == "ws":
            return urlsplit(self.gateway_ws_url).hostname or ""
        address = self.gateway_address
        for prefix in ("dns:///", "ipv4:", "ipv6:"):
            if address.startswith(prefix):
                address = address[len(prefix):]
        if address.startswith("["):
            return address[1:].split("]", 1)[0]
        return address.rsplit(":", 1)[0]

    def channel_is_private(self) -> bool:
        """TLS, or a loopback destination (the token then never leaves the machine)."""
        if self.transport == "ws" and self.gateway_ws_url.startswith("wss://"):
            return True
        if self.transport == "grpc" and (self.tls or self.gateway_address.startswith("unix:")):
            return True
        return is_loopback(self.gateway_host())


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def setting_keys() -> list[str]:
    """The camelCase keys as they appear in extension.toml and carb.settings."""
    return [_camel(f.name) for f in dataclasses.fields(ParkingSettings)]


def _coerce(name: str, raw: Any, default: Any) -> Any:
    key = _camel(name)
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            return bool(raw)
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise TypeError("a boolean is not a number")
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            if isinstance(raw, str):
                return tuple(p.strip() for p in raw.split(",") if p.strip())
            if isinstance(raw, Sequence):
                return tuple(str(p) for p in raw)
            raise TypeError("expected a list of strings")
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{key}: cannot use {raw!r} ({exc})") from None


def _one_of(key: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SettingsError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
