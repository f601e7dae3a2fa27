"""The extension's settings: defaults, parsing and validation (plain Python, no omni imports).

Kit keeps extension settings under ``/exts/simgate.parking/<key>`` (carb.settings); the defaults are
declared in ``config/extension.toml`` under ``[settings]``. ``ParkingSettings.from_mapping`` takes
the flat ``{key: value}`` dictionary read from there, fills what is missing with the defaults below,
normalises units and fails fast with the name of the bad key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

SETTINGS_ROOT = "/exts/simgate.parking"

TRANSPORTS = ("grpc", "ws")
IMAGE_ENCODINGS = ("png", "jpeg", "raw")
DETECTION_MODES = ("auto", "trigger", "position")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the key."""


@dataclass(frozen=True)
class ParkingSettings:
    # Where the gateway listens. gRPC: host:port. WebSocket: a ws:// or wss:// URL.
    gateway_address: str = "127.0.0.1:50051"
    gateway_ws_url: str = "ws://127.0.0.1:8080/v1/events"
    transport: str = "grpc"
    # Bearer token sent with every call; empty means none.
    token: str = ""
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
    image_encoding: str = "png"
    image_width: int = 1280
    image_height: int = 720
    jpeg_quality: int = 90
    # Bounded queues: the outbox between the simulation thread and the worker, the in-flight
    # window on the connection, and the on-disk spool used while the gateway is unreachable.
    outbox_capacity: int = 256
    max_in_flight: int = 32
    spool_dir: str = ""
    spool_max_bytes: int = 512 * 1024 * 1024
    spool_max_events: int = 10_000
    reconnect_initial_ms: int = 200
    reconnect_max_ms: int = 10_000
    # How long on_shutdown waits for unacknowledged events before spooling them.
    shutdown_flush_ms: int = 3_000
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
            ("shutdownFlushMs", self.shutdown_flush_ms, 0, 3_600_000),
        ):
            if not low <= value <= high:
                raise SettingsError(f"{key}: {value} is outside {low}..{high}")
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise SettingsError("reconnectMaxMs: must not be smaller than reconnectInitialMs")
        if self.debounce_seconds < 0:
            raise SettingsError("debounceSeconds: must be >= 0")
        if self.transport == "ws" and not self.gateway_ws_url.startswith(("ws://", "wss://")):
            raise SettingsError("gatewayWsUrl: must start with ws:// or wss://")
        if self.transport == "grpc" and ":" not in self.gateway_address:
            raise SettingsError("gatewayAddress: expected host:port")


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
