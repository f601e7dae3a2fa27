"""Stand-ins for the omni.* / carb calls the adapter makes, for loading the extension outside Kit. Not a
test module.

They follow the names and signatures of the Kit API cited in simgate/parking/extension.py and, as far as the
extension can observe it, Kit's behaviour:
- ``api="107"``: ``carb.eventdispatcher`` with ``observe_event`` / ObserverGuard ``reset()`` and the global
  event names (``omni.kit.app.GLOBAL_EVENT_UPDATE``, ``omni.timeline.GLOBAL_EVENT_PLAY/PAUSE/STOP`` filtered
  by ``get_event_key()``, ``UsdContext.stage_event_name``); the legacy event streams still exist there but
  using them is recorded in ``kit.legacy_api_used``. ``api="106"``: event streams only, no dispatcher.
- ``timeline.play()/pause()/stop()`` take effect on the next update (``is_playing()`` is False until then).
- Each update: timeline state change and its event, time advance, a physics step, the update event, then
  rendering. The rgb annotator returns a frame only once it is finished, ``annotator_lag`` updates after it
  was rendered (at least one frame behind the simulation); every ``skip_every``-th update renders no new
  frame. Pixel [0, 0, 0] (its first byte) of a frame is the number of the update it was rendered in (mod 256).
  As in Replicator, the latest finished frame sits in one host buffer that the next finished frame overwrites
  in place: ``get_data()`` copies it (a new array, Replicator's ``array.copy()``) when the annotator was made
  with ``do_array_copy=True`` (the default of ``get_annotator``), and otherwise returns a view of that buffer.
- ``gpu=True``: Kit on an RTX machine. ``warp`` is importable and finds a CUDA device; an annotator made with
  ``device="cuda"`` keeps its latest finished frame in device memory, rewritten in place by the next finished
  frame like the host buffer, and ``get_data()`` returns a ``warp.array`` view of it. ``wp.clone`` on a stream
  is the GPU's copy engine at work: it costs the CPU a launch (here: no pixel is touched) and
  ``wp.synchronize_stream`` returns once it is done; only ``array.numpy()`` (the device-to-host copy) makes
  host memory, and each call records the thread it ran on. ``gpu=False``: ``import warp`` fails.
- PhysX trigger reports come only from gates with ``UsdPhysics.CollisionAPI`` and ``PhysxTriggerAPI`` and only
  for rigid bodies (``UsdPhysics.RigidBodyAPI``). A rigid body follows its USD animation (kinematic) or a
  function given to ``kit.physx.drive`` (dynamic); with ``/physics/updateToUsd`` false its pose is NOT
  written back to USD (the USD transform goes stale) and is only read through
  ``get_physx_interface().get_rigidbody_transformation(path)``.
- Stage events: ``close_stage()`` sends CLOSING, drops the stage, sends CLOSED; ``open_stage`` sends OPENED.
Each stand-in counts what is live (subscriptions, observers, render products, attached annotators) so a
test can check that everything on_startup or a run took is released.
"""

from __future__ import annotations

import enum
import importlib
import itertools
import math
import sys
import threading
import time
import tomllib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np


# --- ext id and loading, as Kit does them ------------------------------------------------------------------


def extension_name_and_tag(folder: Path) -> tuple[str, str]:
    """Kit reads an extension's name from its folder: ``name`` or ``name-tag`` (split on the first '-')."""
    name, _, tag = folder.name.partition("-")
    return name, tag


def extension_id(folder: Path) -> str:
    """``name[-tag]-version``, the version from config/extension.toml: what Kit passes to on_startup."""
    name, tag = extension_name_and_tag(folder)
    version = tomllib.loads((folder / "config" / "extension.toml").read_text())["package"]["version"]
    return f"{name}-{tag}-{version}" if tag else f"{name}-{version}"


def import_extension_classes(folder: Path) -> list[type]:
    """Import each [[python.module]] of the manifest and find its omni.ext.IExt subclasses."""
    manifest = tomllib.loads((folder / "config" / "extension.toml").read_text())
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # Kit puts the extension's folder on sys.path
    iext = sys.modules["omni.ext"].IExt
    classes = []
    for declared in manifest["python"]["module"]:
        module = importlib.import_module(declared["name"])
        classes += [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, iext) and v is not iext]
    return classes


# --- events: Kit 106 streams and Kit 107 dispatcher ----------------------------------------------------------


class Subscription:
    def __init__(self, owner: "EventStream", fn: Callable[[Any], None], name: str | None) -> None:
        self.owner, self.fn, self.name, self.live = owner, fn, name, True

    def unsubscribe(self) -> None:
        if self.live:
            self.live = False
            self.owner.subscriptions.remove(self)


@dataclass
class Event:
    type: int
    payload: dict


class EventStream:
    """carb.events.IEventStream: push() queues, pump() delivers to create_subscription_to_pop subscribers."""

    def __init__(self, kit: "Kit", name: str) -> None:
        self.kit, self.name = kit, name
        self.subscriptions: list[Subscription] = []
        self._queue: list[Event] = []

    def create_subscription_to_pop(self, fn: Callable[[Any], None], order: int = 0, name: str | None = None) -> Subscription:
        self.kit.note_legacy(self.name)
        sub = Subscription(self, fn, name)
        self.subscriptions.append(sub)
        return sub

    def push(self, event_type: int, payload: dict | None = None) -> None:
        self._queue.append(Event(int(event_type), payload or {}))

    def pump(self) -> None:
        queue, self._queue = self._queue, []
        for event in queue:
            for sub in list(self.subscriptions):
                sub.fn(event)


class DispatchedEvent:
    def __init__(self, event_name: str, payload: dict) -> None:
        self.event_name, self._payload = event_name, payload

    def __getitem__(self, key: str) -> Any:
        return self._payload[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._payload.get(key, default)


class ObserverGuard:
    def __init__(self, dispatcher: "Dispatcher", event_name: str, fn: Callable[[Any], None], filter: Any, name: str) -> None:
        self.dispatcher, self.event_name, self.fn, self.filter, self.name = dispatcher, event_name, fn, filter, name

    def reset(self) -> None:
        if self in self.dispatcher.observers:
            self.dispatcher.observers.remove(self)


class Dispatcher:
    """carb.eventdispatcher.IEventDispatcher: observers are called immediately when an event is dispatched."""

    def __init__(self) -> None:
        self.observers: list[ObserverGuard] = []

    def observe_event(self, *, event_name: str, on_event: Callable[[Any], None], observer_name: str = "",
                      filter: Any = None, order: int = 0) -> ObserverGuard:
        guard = ObserverGuard(self, event_name, on_event, filter, observer_name)
        self.observers.append(guard)
        return guard

    def dispatch_event(self, event_name: str, payload: dict | None = None, key: Any = None) -> None:
        for guard in list(self.observers):
            if guard.event_name == event_name and (guard.filter is None or guard.filter == key):
                guard.fn(DispatchedEvent(event_name, payload or {}))


GLOBAL_EVENT_UPDATE = "omni.kit.app:update"
GLOBAL_EVENT_PLAY = "omni.timeline:timeline:play"
GLOBAL_EVENT_PAUSE = "omni.timeline:timeline:pause"
GLOBAL_EVENT_STOP = "omni.timeline:timeline:stop"


class TimelineEventType(enum.IntEnum):
    PLAY = 0
    PAUSE = 1
    STOP = 2
    CURRENT_TIME_CHANGED = 3
    CURRENT_TIME_TICKED_PERMANENT = 4
    CURRENT_TIME_TICKED = 5


class StageEventType(enum.IntEnum):
    SAVED = 0
    SAVE_FAILED = 1
    OPENING = 2
    OPENED = 3
    OPEN_FAILED = 4
    CLOSING = 5
    CLOSED = 6


class Timeline:
    def __init__(self, kit: "Kit") -> None:
        self.kit = kit
        self.stream = EventStream(kit, "timeline")
        self._playing = False
        self._time = 0.0
        self._pending: Optional[TimelineEventType] = None

    def get_timeline_event_stream(self) -> EventStream:
        return self.stream

    def get_event_key(self) -> str:
        return "timeline:default"

    # Requests: applied at the next update, as Kit does ("state changes are applied in the next frame").
    def play(self) -> None:
        self._pending = TimelineEventType.PLAY

    def pause(self) -> None:
        self._pending = TimelineEventType.PAUSE

    def stop(self) -> None:
        self._pending = TimelineEventType.STOP

    def apply_pending(self) -> None:
        change, self._pending = self._pending, None
        if change is None:
            return
        if change == TimelineEventType.PLAY and self._playing:
            return
        self._playing = change == TimelineEventType.PLAY
        if change == TimelineEventType.STOP:
            self._time = 0.0
        if self.kit.api == "107":
            name = {TimelineEventType.PLAY: GLOBAL_EVENT_PLAY, TimelineEventType.PAUSE: GLOBAL_EVENT_PAUSE,
                    TimelineEventType.STOP: GLOBAL_EVENT_STOP}[change]
            self.kit.dispatcher.dispatch_event(name, {}, key=self.get_event_key())
        self.stream.push(change)
        self.stream.pump()

    def is_playing(self) -> bool:
        return self._playing

    def is_stopped(self) -> bool:
        return not self._playing and self._time == 0.0

    def get_current_time(self) -> float:
        return self._time

    def set_current_time(self, t: float) -> None:
        self._time = float(t)


class App:
    def __init__(self, kit: "Kit") -> None:
        self.update_stream = EventStream(kit, "update")

    def get_update_event_stream(self, runloop_name: str = "main") -> EventStream:
        return self.update_stream


class UsdContext:
    def __init__(self, kit: "Kit", stage: Any) -> None:
        self.kit, self.stage = kit, stage
        self.stream = EventStream(kit, "stage")

    def get_stage(self) -> Any:
        return self.stage

    def get_stage_event_stream(self) -> EventStream:
        return self.stream

    def stage_event_name(self, event_type: StageEventType) -> str:
        return f"omni.usd:context::{StageEventType(event_type).name.lower()}"

    def send(self, event_type: StageEventType) -> None:
        if self.kit.api == "107":
            self.kit.dispatcher.dispatch_event(self.stage_event_name(event_type), {})
        self.stream.push(event_type)
        self.stream.pump()

    def close_stage(self) -> None:
        self.send(StageEventType.CLOSING)
        self.stage = None
        self.send(StageEventType.CLOSED)

    def open_stage(self, stage: Any) -> None:
        if self.stage is not None:
            self.close_stage()
        self.stage = stage
        self.send(StageEventType.OPENED)


class Settings:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values  # flat: "/exts/simgate.parking/gatewayAddress" -> value

    def get(self, path: str) -> Any:
        if path in self.values:
            return self.values[path]
        prefix = path.rstrip("/") + "/"
        subtree = {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix)}
        return subtree or None

    def set(self, path: str, value: Any) -> None:
        self.values[path] = value


# --- PhysX ---------------------------------------------------------------------------------------------------


class TriggerEventType(enum.IntEnum):
    TRIGGER_ON_ENTER = 0
    TRIGGER_ON_LEAVE = 1


@dataclass
class TriggerEventData:
    event_type: TriggerEventType
    trigger_collider_prim_id: int
    trigger_body_prim_id: int
    other_collider_prim_id: int
    other_body_prim_id: int
    stage_id: int = 0
    subscription_id: int = 0


class PhysicsSchemaTools:
    """pxr.PhysicsSchemaTools (part of Kit's USD build, not of usd-core): paths <-> ints."""

    _ids: dict[int, str] = {}

    @classmethod
    def sdfPathToInt(cls, path: Any) -> int:
        key = abs(hash(str(path))) % (1 << 62)
        cls._ids[key] = str(path)
        return key

    @classmethod
    def intToSdfPath(cls, value: int) -> Any:
        from pxr import Sdf

        return Sdf.Path(cls._ids[value])


Drive = Callable[[float], tuple[tuple[float, float, float], float]]  # time -> (position, yaw in degrees)


class Physx:
    """omni.physx's simulation interface (trigger reports) and physx interface (rigid-body poses)."""

    def __init__(self, kit: "Kit") -> None:
        self.kit = kit
        self.trigger_subs: dict[int, Callable[[TriggerEventData], None]] = {}
        self._ids = itertools.count(1)
        self.drives: dict[str, Drive] = {}
        self.poses: dict[str, tuple[tuple[float, float, float], tuple[float, float, float, float]]] = {}
        self._inside: set[tuple[str, str]] = set()
        self.reports = 0

    # simulation interface
    def subscribe_physics_trigger_report_events(self, trigger_report_fn, stage_id: int = 0, prim_id: int = 0) -> int:
        sub_id = next(self._ids)
        self.trigger_subs[sub_id] = trigger_report_fn
        return sub_id

    def unsubscribe_physics_trigger_report_events(self, subscription_id: int) -> None:
        del self.trigger_subs[subscription_id]

    # physx interface
    def get_rigidbody_transformation(self, path: str) -> dict:
        pose = self.poses.get(str(path))
        if pose is None:
            return {"ret_val": False}
        return {"ret_val": True, "position": pose[0], "rotation": pose[1]}

    def drive(self, car_path: str, fn: Drive) -> None:
        """A dynamic rigid body moved by the simulation (not by USD animation)."""
        self.drives[car_path] = fn

    def reset(self) -> None:
        self.poses.clear()
        self._inside.clear()

    def step(self, t: float) -> None:
        from pxr import Gf, Usd, UsdGeom, UsdPhysics

        stage = self.kit.usd.stage
        if stage is None:
            return
        tc = Usd.TimeCode(t * stage.GetTimeCodesPerSecond())
        cars_root = stage.GetPrimAtPath("/World/Cars")
        bodies = [p for p in (cars_root.GetChildren() if cars_root else []) if p.HasAPI(UsdPhysics.RigidBodyAPI)]
        write_back = self.kit.settings.get("/physics/updateToUsd") is not False
        for body in bodies:
            path = str(body.GetPath())
            if path in self.drives:
                position, yaw = self.drives[path](t)
                half = math.radians(yaw) / 2
                self.poses[path] = (tuple(map(float, position)), (0.0, 0.0, math.sin(half), math.cos(half)))
                if write_back:
                    body.GetAttribute("xformOp:translate").Set(Gf.Vec3d(*position))
                    if body.GetAttribute("xformOp:rotateZ"):
                        body.GetAttribute("xformOp:rotateZ").Set(float(yaw))
            else:  # kinematic: follows its USD animation
                world = UsdGeom.Xformable(body).ComputeLocalToWorldTransform(tc)
                q = world.ExtractRotationQuat()
                im = q.GetImaginary()
                self.poses[path] = (tuple(float(c) for c in world.ExtractTranslation()),
                                    (float(im[0]), float(im[1]), float(im[2]), float(q.GetReal())))
        cache = UsdGeom.BBoxCache(tc, [UsdGeom.Tokens.default_, UsdGeom.Tokens.render])
        gates_root = stage.GetPrimAtPath("/World/Gates")
        for gate in gates_root.GetChildren() if gates_root else []:
            list_op = gate.GetMetadata("apiSchemas")
            schemas = set(gate.GetAppliedSchemas()) | set(list_op.GetAddedOrExplicitItems() if list_op else ())
            if not (gate.HasAPI(UsdPhysics.CollisionAPI) and "PhysxTriggerAPI" in schemas):
                continue  # PhysX reports nothing for it
            box = cache.ComputeWorldBound(gate).ComputeAlignedRange()
            for body in bodies:
                path = str(body.GetPath())
                inside = box.Contains(Gf.Vec3d(*self.poses[path][0]))
                key = (str(gate.GetPath()), path)
                if inside == (key in self._inside):
                    continue
                (self._inside.add if inside else self._inside.discard)(key)
                collider = next((c for c in body.GetChildren() if c.HasAPI(UsdPhysics.CollisionAPI)), body)
                self._report(str(gate.GetPath()), str(collider.GetPath()), path, inside)

    def _report(self, trigger_path: str, collider_path: str, body_path: str, entered: bool) -> None:
        self.reports += 1
        data = TriggerEventData(
            TriggerEventType.TRIGGER_ON_ENTER if entered else TriggerEventType.TRIGGER_ON_LEAVE,
            PhysicsSchemaTools.sdfPathToInt(trigger_path),
            PhysicsSchemaTools.sdfPathToInt(trigger_path),
            PhysicsSchemaTools.sdfPathToInt(collider_path),
            PhysicsSchemaTools.sdfPathToInt(body_path),
        )
        for fn in list(self.trigger_subs.values()):
            fn(data)


# --- Replicator ----------------------------------------------------------------------------------------------


class RenderProduct:
    def __init__(self, registry: "Replicator", camera: str, resolution: tuple[int, int]) -> None:
        self.registry, self.camera, self.resolution = registry, camera, tuple(resolution)
        self.path = f"/Render/RenderProduct_{len(registry.created)}"
        self.destroyed = False

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.registry.live.remove(self)


class DeviceArray:
    """A ``warp.array`` of uint8 on "cuda:0" as far as the extension uses it: shape, dtype, size, device and
    ``numpy()``. The pixels live "on the device": the picture and the number of the update the frame was
    rendered in (written into its first byte when the frame reaches host memory)."""

    def __init__(self, replicator: "Replicator", picture: Optional[np.ndarray], frame: Optional[int],
                 device: Optional[str] = None) -> None:
        self.replicator, self.picture, self.frame = replicator, picture, frame
        self.device = device or replicator.cuda_device
        self.dtype = WarpUint8
        self.shape = picture.shape if picture is not None else (0,)
        self.size = int(np.prod(self.shape)) if picture is not None else 0

    def numpy(self) -> np.ndarray:
        """The device-to-host copy: new host memory with the pixels (the CPU's share of it happens here)."""
        self.replicator.host_copy_threads.append(threading.get_ident())
        if self.picture is None:
            return np.zeros((0,), np.uint8)
        out = self.picture.copy()
        out[0, 0, 0] = (self.frame or 0) % 256
        return out


class WarpUint8:
    """warp.types.uint8 (a class; its __name__ is the type's name)."""


WarpUint8.__name__ = "uint8"


class WarpStream:
    def __init__(self, device: str = "cuda:0") -> None:
        self.device = device


class _ScopedStream:
    """Makes ``stream`` (and its device) current inside the block, as warp.ScopedStream does."""

    current: list[WarpStream] = []

    def __init__(self, stream: WarpStream) -> None:
        self.stream = stream

    def __enter__(self) -> WarpStream:
        _ScopedStream.current.append(self.stream)
        return self.stream

    def __exit__(self, *exc: Any) -> None:
        _ScopedStream.current.pop()


# What a device-side copy of one frame costs the CPU, all of it charged to wp.clone (synchronize_stream is free
# here): Warp's Python around the array and the copy, a stream-ordered allocation, an asynchronous
# device-to-device copy and the wait for it (3.7 MB at device bandwidth: microseconds). Not measured on an RTX
# machine here; 0.1 ms is a generous estimate of that sum, so the benchmark does not flatter the GPU path.
DEVICE_COPY_CPU_S = 100e-6


def _spend_cpu(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def warp_module(replicator: "Replicator") -> types.ModuleType:
    """The ``warp`` calls the extension makes, on a machine with one CUDA device."""
    module = types.ModuleType("warp")

    def clone(src: DeviceArray, device: Any = None, requires_grad: Any = None, pinned: Any = None) -> DeviceArray:
        # Warp copies on the current stream of the destination's device (src.device here): a stream of another
        # device made current would not order the copy, and waiting for it would not wait for the copy.
        if _ScopedStream.current and _ScopedStream.current[-1].device != src.device:
            raise RuntimeError(f"the copy of an array on {src.device} is not ordered by a stream on "
                               f"{_ScopedStream.current[-1].device}")
        replicator.device_clones += 1
        _spend_cpu(DEVICE_COPY_CPU_S)  # the CPU's share: allocation, launch, Warp's Python, the stream wait
        return DeviceArray(replicator, src.picture, src.frame)  # the pixels: the copy engine's work

    module.__dict__.update(
        array=DeviceArray, uint8=WarpUint8, Stream=WarpStream, ScopedStream=_ScopedStream, clone=clone,
        is_cuda_available=lambda: True, get_cuda_device_count=lambda: 1,
        synchronize_stream=lambda stream: None, init=lambda: None,
    )
    return module


class Annotator:
    """omni.replicator.core's Annotator as far as the extension uses it. Replicator keeps the latest finished
    frame in a host buffer of its own and rewrites that buffer when the renderer finishes the next frame.
    ``get_data()`` returns a copy of it (a new array each call) when the annotator was made with
    ``do_array_copy=True`` (``get_annotator``'s default) or the call asks for one, else a view of the buffer
    itself, which changes under whoever still holds it once the next frame is finished (Replicator:
    ``do_copy = do_array_copy if do_array_copy else <the annotator's do_array_copy>``)."""

    def __init__(self, registry: "Replicator", name: str, device: Optional[str] = None, do_array_copy: bool = True) -> None:
        self.registry, self.name = registry, name
        self.device, self.do_array_copy = device or "cpu", do_array_copy
        self.render_products: list[RenderProduct] = []
        self._frames: list[tuple[int, int]] = []  # (readable from update, rendered in update)
        self._host: Optional[np.ndarray] = None  # Replicator's buffer: the latest finished frame
        self._host_frame: Optional[int] = None
        self._device: Optional[DeviceArray] = None  # the same on the GPU (device="cuda")
        self.fail_detach = False
        self.copies = 0  # get_data calls that returned a new array

    def attach(self, render_products: list[RenderProduct]) -> None:
        self.render_products = list(render_products)
        self.registry.attached.append(self)

    def detach(self) -> None:
        if self.fail_detach:
            raise RuntimeError("annotator detach failed (test)")
        if self in self.registry.attached:
            self.registry.attached.remove(self)
        self.render_products = []

    def finish_frames(self, now: int) -> None:
        """The renderer finished what is due by update ``now``: the latest such frame goes into the host buffer
        (in place: the same memory, as Replicator reuses it)."""
        ready = [rendered for at, rendered in self._frames if at <= now]
        if not ready or ready[-1] == self._host_frame or not self.render_products:
            return
        picture = self.registry.picture(self.render_products[0].resolution)
        if self.device.startswith("cuda"):
            if self._device is None or self._device.picture is not picture:
                self._device = DeviceArray(self.registry, picture, None, self.registry.cuda_device)
            self._device.frame = ready[-1]  # rewritten in place, as the host buffer
            self._host_frame = ready[-1]
            return
        if self._host is None or self._host.shape != picture.shape:
            self._host = np.empty_like(picture)
            np.copyto(self._host, picture)
        self._host[0, 0, 0] = ready[-1] % 256  # the update it was rendered in; the rest of the picture is static
        self._host_frame = ready[-1]

    def get_data(self, device: Optional[str] = None, do_array_copy: bool = False, use_legacy_structure: bool = True) -> Any:
        """The latest finished frame, copied or not (see the class), or an empty array when none is finished."""
        if not self.render_products:
            raise RuntimeError("Unable to get data, annotator is not attached to any render products.")
        on_device = (device or self.device).startswith("cuda")
        if self._host_frame is None:
            return DeviceArray(self.registry, None, None) if on_device else np.zeros((0,), np.uint8)
        if on_device:
            if not self.device.startswith("cuda"):
                raise RuntimeError("the annotator's data is on the host: make it with device='cuda'")
            if do_array_copy or self.do_array_copy:
                self.copies += 1
                return self.registry.modules_warp.clone(self._device)
            return self._device
        if do_array_copy or self.do_array_copy:
            self.copies += 1
            return self._host.copy()  # what Replicator does: array.copy(), a new allocation each call
        return self._host

    def render(self, update: int, lag: int) -> None:
        self._frames = self._frames[-3:] + [(update + lag, update)]


class Replicator:
    def __init__(self, kit: "Kit") -> None:
        self.kit = kit
        self.created: list[RenderProduct] = []
        self.live: list[RenderProduct] = []
        self.attached: list[Annotator] = []
        self.annotators: list[Annotator] = []
        self.cuda_device = "cuda:0"  # where the device annotators' buffers are (a test may choose another GPU)
        self.device_clones = 0  # wp.clone calls (device-side copies)
        self.host_copy_threads: list[int] = []  # the thread of each device-to-host copy (DeviceArray.numpy)
        self.modules_warp = warp_module(self)
        self._pictures: dict[tuple[int, int], np.ndarray] = {}
        # what the cameras see (width, height) -> (h, w, 4) uint8; default: flat green
        self.scene: Optional[Callable[[int, int], np.ndarray]] = None

    def picture(self, resolution: tuple[int, int]) -> np.ndarray:
        width, height = resolution
        picture = self._pictures.get((width, height))
        if picture is None:
            if self.scene is not None:
                picture = self.scene(width, height)
            else:
                picture = np.zeros((height, width, 4), np.uint8)
                picture[..., 1] = 200
                picture[..., 3] = 255
            self._pictures[(width, height)] = picture
        return picture

    def render_product(self, camera: str, resolution: tuple[int, int], *args: Any, **kwargs: Any) -> RenderProduct:
        rp = RenderProduct(self, camera, resolution)
        self.created.append(rp)
        self.live.append(rp)
        return rp

    def get_annotator(self, name: str, init_params: Optional[dict] = None, render_product_idxs: Any = None,
                      device: Optional[str] = None, do_array_copy: bool = True) -> Annotator:
        if name != "rgb":
            raise KeyError(name)
        annotator = Annotator(self, name, device, do_array_copy)
        self.annotators.append(annotator)
        return annotator

    def finish_frames(self) -> None:
        for annotator in self.attached:
            annotator.finish_frames(self.kit.updates)

    def render(self) -> None:
        kit = self.kit
        if kit.skip_every and kit.updates % kit.skip_every == 0:
            return  # the renderer has no new frame this time
        for annotator in self.attached:
            annotator.render(kit.updates, kit.annotator_lag)


# --- the runtime -----------------------------------------------------------------------------------------------


class Kit:
    """The stand-in runtime: modules to inject, and a loop that advances the app like Kit's run loop."""

    def __init__(self, stage: Any, settings: dict[str, Any], api: str = "107", annotator_lag: int = 2,
                 skip_every: int = 5, gpu: bool = False) -> None:
        if api not in ("106", "107"):
            raise ValueError(api)
        self.api = api
        self.gpu = gpu
        self.annotator_lag = annotator_lag
        self.skip_every = skip_every
        self.updates = 0
        self.legacy_api_used: set[str] = set()
        self.settings = Settings({"/physics/updateToUsd": True, **settings})
        self.dispatcher = Dispatcher()
        self.app = App(self)
        self.timeline = Timeline(self)
        self.usd = UsdContext(self, stage)
        self.physx = Physx(self)
        self.replicator = Replicator(self)
        self.logs: list[tuple[str, str]] = []
        self.modules = self._modules()

    @property
    def stage(self) -> Any:
        return self.usd.stage

    def note_legacy(self, stream: str) -> None:
        if self.api == "107":
            self.legacy_api_used.add(stream)

    def _module(self, name: str, **attrs: Any) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        return module

    def _modules(self) -> dict[str, Optional[types.ModuleType]]:
        class IExt:
            def on_startup(self, ext_id: str) -> None: ...
            def on_shutdown(self) -> None: ...

        log = lambda level: (lambda msg, *a, **k: self.logs.append((level, msg)))  # noqa: E731
        carb = self._module("carb", log_error=log("error"), log_warn=log("warn"), log_info=log("info"))
        carb.__path__ = []
        carb_settings = self._module("carb.settings", get_settings=lambda: self.settings)
        carb_tokens = self._module(
            "carb.tokens", get_tokens_interface=lambda: types.SimpleNamespace(resolve=lambda s: s.replace("${data}", "/tmp"))
        )
        carb.settings, carb.tokens = carb_settings, carb_tokens
        modules = {"carb": carb, "carb.settings": carb_settings, "carb.tokens": carb_tokens}
        omni = self._module("omni")
        omni.__path__ = []  # a package, so "omni.x" submodules resolve from sys.modules
        ext = self._module("omni.ext", IExt=IExt)
        kit = self._module("omni.kit")
        kit.__path__ = []
        kit_app = self._module("omni.kit.app", get_app=lambda: self.app)
        timeline = self._module(
            "omni.timeline", get_timeline_interface=lambda: self.timeline, TimelineEventType=TimelineEventType
        )
        usd = self._module("omni.usd", get_context=lambda: self.usd, StageEventType=StageEventType)
        if self.api == "107":
            dispatcher = self._module("carb.eventdispatcher", get_eventdispatcher=lambda: self.dispatcher)
            carb.eventdispatcher = dispatcher
            modules["carb.eventdispatcher"] = dispatcher
            kit_app.GLOBAL_EVENT_UPDATE = GLOBAL_EVENT_UPDATE
            timeline.GLOBAL_EVENT_PLAY, timeline.GLOBAL_EVENT_PAUSE = GLOBAL_EVENT_PLAY, GLOBAL_EVENT_PAUSE
            timeline.GLOBAL_EVENT_STOP = GLOBAL_EVENT_STOP
        else:  # Kit 106: no stage_event_name on the context
            usd.get_context = lambda: _Kit106Context(self.usd)
        physx = self._module("omni.physx", get_physx_simulation_interface=lambda: self.physx,
                             get_physx_interface=lambda: self.physx)
        physx.__path__ = []
        bindings = self._module("omni.physx.bindings")
        bindings.__path__ = []
        physx_bindings = self._module("omni.physx.bindings._physx", TriggerEventType=TriggerEventType,
                                      TriggerEventData=TriggerEventData)
        replicator = self._module("omni.replicator")
        replicator.__path__ = []
        rep_core = self._module(
            "omni.replicator.core",
            create=types.SimpleNamespace(render_product=self.replicator.render_product),
            AnnotatorRegistry=types.SimpleNamespace(get_annotator=self.replicator.get_annotator),
        )
        omni.ext, omni.kit, omni.timeline, omni.usd, omni.physx, omni.replicator = ext, kit, timeline, usd, physx, replicator
        kit.app, replicator.core, physx.bindings, bindings._physx = kit_app, rep_core, bindings, physx_bindings
        modules.update({
            "omni": omni, "omni.ext": ext, "omni.kit": kit, "omni.kit.app": kit_app, "omni.timeline": timeline,
            "omni.usd": usd, "omni.physx": physx, "omni.physx.bindings": bindings,
            "omni.physx.bindings._physx": physx_bindings, "omni.replicator": replicator, "omni.replicator.core": rep_core,
        })
        # Without a GPU `import warp` fails (a None entry in sys.modules makes the import raise ImportError).
        modules["warp"] = self.replicator.modules_warp if self.gpu else None  # type: ignore[assignment]
        return modules

    def install(self, monkeypatch: Any) -> None:
        if self.api == "106":
            monkeypatch.delitem(sys.modules, "carb.eventdispatcher", raising=False)
        for name, module in self.modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        import pxr

        monkeypatch.setattr(pxr, "PhysicsSchemaTools", PhysicsSchemaTools, raising=False)

    def update(self, dt: float = 1 / 24) -> None:
        """One app update, in Kit's order: timeline state change and its event, time advance, physics step
        (trigger reports), the update event, then rendering (readable by the annotator later)."""
        self.updates += 1
        self.replicator.finish_frames()  # frames rendered earlier are finished now (annotator_lag)
        self.timeline.apply_pending()
        if self.timeline.is_playing():
            self.timeline.set_current_time(self.timeline.get_current_time() + dt)
            self.physx.step(self.timeline.get_current_time())
        elif self.timeline.is_stopped():
            self.physx.reset()
        if self.api == "107":
            self.dispatcher.dispatch_event(GLOBAL_EVENT_UPDATE, {"dt": dt})
        self.app.update_stream.push(0, {"dt": dt})
        self.app.update_stream.pump()
        self.replicator.render()

    def close_stage(self) -> None:
        self.usd.close_stage()

    def live(self) -> dict[str, int]:
        return {
            "update_subscriptions": len(self.app.update_stream.subscriptions)
            + sum(1 for g in self.dispatcher.observers if g.event_name == GLOBAL_EVENT_UPDATE),
            "timeline_subscriptions": len(self.timeline.stream.subscriptions)
            + sum(1 for g in self.dispatcher.observers if g.event_name.startswith("omni.timeline:")),
            "stage_subscriptions": len(self.usd.stream.subscriptions)
            + sum(1 for g in self.dispatcher.observers if g.event_name.startswith("omni.usd:")),
            "trigger_subscriptions": len(self.physx.trigger_subs),
            "render_products": len(self.replicator.live),
            "attached_annotators": len(self.replicator.attached),
        }


class _Kit106Context:
    """omni.usd's context as Kit 106 has it: no stage_event_name (events through the stage event stream)."""

    def __init__(self, context: UsdContext) -> None:
        self._context = context

    def get_stage(self) -> Any:
        return self._context.get_stage()

    def get_stage_event_stream(self) -> EventStream:
        return self._context.get_stage_event_stream()
