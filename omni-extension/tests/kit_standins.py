"""Stand-ins for the few omni.* / carb calls the adapter makes, for loading the extension outside Kit.

Names and signatures follow the Kit 106.5 Python API (kit-manual 106.x, omni.timeline 1.0.x,
omni.physx 106, omni.replicator.core 1.11), as cited in simgate/parking/extension.py. Each stand-in
counts what is live (subscriptions, render products, attached annotators) so a test can check that
on_shutdown released everything on_startup took. Not a test module.
"""

from __future__ import annotations

import enum
import itertools
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


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

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self._queue: list[Event] = []

    def create_subscription_to_pop(self, fn: Callable[[Any], None], order: int = 0, name: str | None = None) -> Subscription:
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


class TimelineEventType(enum.IntEnum):
    PLAY = 0
    PAUSE = 1
    STOP = 2
    CURRENT_TIME_CHANGED = 3
    CURRENT_TIME_TICKED_PERMANENT = 4
    CURRENT_TIME_TICKED = 5


class Timeline:
    def __init__(self) -> None:
        self.stream = EventStream()
        self._playing = False
        self._time = 0.0

    def get_timeline_event_stream(self) -> EventStream:
        return self.stream

    def play(self) -> None:
        self._playing = True
        self.stream.push(TimelineEventType.PLAY)

    def pause(self) -> None:
        self._playing = False
        self.stream.push(TimelineEventType.PAUSE)

    def stop(self) -> None:
        self._playing = False
        self._time = 0.0
        self.stream.push(TimelineEventType.STOP)

    def is_playing(self) -> bool:
        return self._playing

    def is_stopped(self) -> bool:
        return not self._playing and self._time == 0.0

    def get_current_time(self) -> float:
        return self._time

    def set_current_time(self, t: float) -> None:
        self._time = float(t)


class App:
    def __init__(self) -> None:
        self.update_stream = EventStream()

    def get_update_event_stream(self, runloop_name: str = "main") -> EventStream:
        return self.update_stream


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


class PhysxSimulation:
    def __init__(self) -> None:
        self.trigger_subs: dict[int, Callable[[TriggerEventData], None]] = {}
        self._ids = itertools.count(1)

    def subscribe_physics_trigger_report_events(self, trigger_report_fn, stage_id: int = 0, prim_id: int = 0) -> int:
        sub_id = next(self._ids)
        self.trigger_subs[sub_id] = trigger_report_fn
        return sub_id

    def unsubscribe_physics_trigger_report_events(self, subscription_id: int) -> None:
        del self.trigger_subs[subscription_id]

    def report(self, trigger_path: str, other_path: str, entered: bool) -> None:
        data = TriggerEventData(
            TriggerEventType.TRIGGER_ON_ENTER if entered else TriggerEventType.TRIGGER_ON_LEAVE,
            PhysicsSchemaTools.sdfPathToInt(trigger_path),
            PhysicsSchemaTools.sdfPathToInt(trigger_path),
            PhysicsSchemaTools.sdfPathToInt(other_path),
            PhysicsSchemaTools.sdfPathToInt(other_path.rsplit("/", 1)[0]),
        )
        for fn in list(self.trigger_subs.values()):
            fn(data)


class RenderProduct:
    def __init__(self, registry: "Replicator", camera: str, resolution: tuple[int, int]) -> None:
        self.registry, self.camera, self.resolution = registry, camera, tuple(resolution)
        self.path = f"/Render/RenderProduct_{len(registry.created)}"
        self.destroyed = False

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.registry.live.remove(self)


class Annotator:
    def __init__(self, registry: "Replicator", name: str) -> None:
        self.registry, self.name = registry, name
        self.render_products: list[RenderProduct] = []
        self.frame: Any = np.zeros((0,), np.uint8)  # nothing rendered yet: an empty array, like Kit

    def attach(self, render_products: list[RenderProduct]) -> None:
        self.render_products = list(render_products)
        self.registry.attached.append(self)

    def detach(self) -> None:
        if self in self.registry.attached:
            self.registry.attached.remove(self)
        self.render_products = []

    def get_data(self) -> Any:
        return self.frame

    def render(self) -> None:
        width, height = self.render_products[0].resolution
        frame = np.zeros((height, width, 4), np.uint8)
        frame[..., 1] = 200
        frame[..., 3] = 255
        self.frame = frame


class Replicator:
    def __init__(self) -> None:
        self.created: list[RenderProduct] = []
        self.live: list[RenderProduct] = []
        self.attached: list[Annotator] = []

    def render_product(self, camera: str, resolution: tuple[int, int], *args: Any, **kwargs: Any) -> RenderProduct:
        rp = RenderProduct(self, camera, resolution)
        self.created.append(rp)
        self.live.append(rp)
        return rp

    def get_annotator(self, name: str, *args: Any, **kwargs: Any) -> Annotator:
        if name != "rgb":
            raise KeyError(name)
        return Annotator(self, name)

    def render(self) -> None:
        for annotator in self.attached:
            annotator.render()


class Kit:
    """The stand-in runtime: modules to inject, and a loop that advances the app like Kit's run loop."""

    def __init__(self, stage: Any, settings: dict[str, Any]) -> None:
        self.stage = stage
        self.settings = Settings(settings)
        self.app = App()
        self.timeline = Timeline()
        self.physx = PhysxSimulation()
        self.replicator = Replicator()
        self.logs: list[tuple[str, str]] = []
        self.modules = self._modules()

    def _module(self, name: str, **attrs: Any) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        return module

    def _modules(self) -> dict[str, types.ModuleType]:
        class IExt:
            def on_startup(self, ext_id: str) -> None: ...
            def on_shutdown(self) -> None: ...

        log = lambda level: (lambda msg, *a, **k: self.logs.append((level, msg)))  # noqa: E731
        carb = self._module("carb", log_error=log("error"), log_warn=log("warn"), log_info=log("info"))
        carb_settings = self._module("carb.settings", get_settings=lambda: self.settings)
        carb_tokens = self._module(
            "carb.tokens", get_tokens_interface=lambda: types.SimpleNamespace(resolve=lambda s: s.replace("${data}", "/tmp"))
        )
        carb.settings, carb.tokens = carb_settings, carb_tokens
        omni = self._module("omni")
        omni.__path__ = []  # a package, so "omni.x" submodules resolve from sys.modules
        ext = self._module("omni.ext", IExt=IExt)
        kit = self._module("omni.kit")
        kit.__path__ = []
        kit_app = self._module("omni.kit.app", get_app=lambda: self.app)
        timeline = self._module(
            "omni.timeline", get_timeline_interface=lambda: self.timeline, TimelineEventType=TimelineEventType
        )
        usd = self._module("omni.usd", get_context=lambda: types.SimpleNamespace(get_stage=lambda: self.stage))
        physx = self._module("omni.physx", get_physx_simulation_interface=lambda: self.physx)
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
        return {
            "carb": carb, "carb.settings": carb_settings, "carb.tokens": carb_tokens,
            "omni": omni, "omni.ext": ext, "omni.kit": kit, "omni.kit.app": kit_app, "omni.timeline": timeline,
            "omni.usd": usd, "omni.physx": physx, "omni.physx.bindings": bindings,
            "omni.physx.bindings._physx": physx_bindings, "omni.replicator": replicator, "omni.replicator.core": rep_core,
        }

    def install(self, monkeypatch: Any) -> None:
        for name, module in self.modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        import pxr

        monkeypatch.setattr(pxr, "PhysicsSchemaTools", PhysicsSchemaTools, raising=False)

    def update(self, dt: float = 1 / 24) -> None:
        """One app update: render, advance the timeline if playing, deliver events, run update subscribers."""
        self.replicator.render()
        if self.timeline.is_playing():
            self.timeline.set_current_time(self.timeline.get_current_time() + dt)
        self.timeline.stream.pump()
        self.app.update_stream.push(0, {"dt": dt})
        self.app.update_stream.pump()

    def live(self) -> dict[str, int]:
        return {
            "update_subscriptions": len(self.app.update_stream.subscriptions),
            "timeline_subscriptions": len(self.timeline.stream.subscriptions),
            "trigger_subscriptions": len(self.physx.trigger_subs),
            "render_products": len(self.replicator.live),
            "attached_annotators": len(self.replicator.attached),
        }
