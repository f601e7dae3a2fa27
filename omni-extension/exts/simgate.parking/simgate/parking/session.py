"""One run of the parking simulation, from timeline play to stop (plain Python + pxr, no omni).

The omni adapter feeds it: ``on_trigger`` from PhysX trigger reports, ``on_update`` once per app
update with the timeline's current time. It detects crossings, reads the car from the stage, takes
the gate camera's latest frame, builds the event and hands it to ``sink`` (the worker's non-blocking
``submit``). Nothing here waits on the network or the renderer.

Detection modes: ``auto`` uses PhysX trigger reports where they can work (a gate set up as a trigger, a car
that is a rigid body) and checks positions for everything else; ``trigger`` checks positions only at gates
that cannot report triggers; ``position`` checks every car at every gate.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .wire import simgate_pb2

from .events import CapturedImage, Picture, RunEvents, WithPictures, new_run_id
from .gates import GateCrossing, GateDetector
from .images import ImageEncodingError, RgbaFrame, check_pixels, encode
from .settings import ParkingSettings
from .stage_reader import CarState, PhysicsSetup, StageReader

log = logging.getLogger(__name__)

Sink = Callable[[Any], bool]
CAR_LIST_REFRESH_S = 0.5
# Given a camera prim path: the latest rendered frame as an (h, w, 4) uint8 array or an RgbaFrame,
# or None when the renderer has not produced one yet.
FrameSource = Callable[[str], Any]


@dataclass
class SessionStats:
    trigger_reports: int = 0
    ignored_reports: int = 0
    events: int = 0
    images: int = 0
    images_missing: int = 0
    image_errors: int = 0
    read_errors: int = 0


class ParkingSession:
    def __init__(
        self,
        settings: ParkingSettings,
        reader: StageReader,
        sink: Sink,
        frames: Optional[FrameSource] = None,
        producer_version: str = "0.0.0",
        run_id: Optional[str] = None,
        clock_ms: Optional[Callable[[], int]] = None,
        encode_images: bool = True,
        defer_pictures: bool = False,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self._sink = sink
        self._frames = frames
        # False: attach raw RGBA (a copy, fast) and let the worker thread encode (images.encode_frame_images)
        self._encoding = settings.image_encoding if encode_images else "raw"
        # True (the adapter): the picture stays the array the frame source handed over (the adapter's copy
        # in a recycled buffer) and the worker thread turns it into bytes and an Image message
        # (events.WithPictures). The frame is taken on the update after the crossing's: the renderer's
        # frame of the crossing's update is then the newest it can have finished (it lags the simulation by
        # at least one frame), and the event's work is spread over two updates. At most one frame is
        # taken per update (one camera); events keep their order.
        self._defer_pictures = defer_pictures
        self._awaiting: collections.deque[tuple[simgate_pb2.Event, str, str]] = collections.deque()
        self.producer_version = producer_version
        kwargs = {"clock_ms": clock_ms} if clock_ms is not None else {}
        self.run = RunEvents(run_id or new_run_id(settings.run_id_prefix), **kwargs)
        self.physics: PhysicsSetup = reader.physics_setup(settings.gate_prim_paths)
        use_triggers = settings.detection in ("auto", "trigger")
        self.detector = GateDetector(
            reader.gate_volumes(settings.gate_prim_paths),
            debounce_seconds=settings.debounce_seconds,
            use_triggers=use_triggers,
            use_positions=True,
            trigger_gates=frozenset(self.physics.good_gates) if use_triggers else frozenset(),
            trigger_cars=frozenset(self.physics.rigid_cars) if use_triggers else frozenset(),
            polled_gates=frozenset(self.physics.bad_gates) if settings.detection == "trigger" else None,
        )
        # trigger mode: positions only at gates that cannot report triggers (the fallback)
        self._polled_gates_only = settings.detection == "trigger"
        self._cars: Optional[list[str]] = None
        self._cars_listed_at = 0.0
        self._next_check: dict[str, float] = {}
        self._last_time = float("-inf")
        # the fastest a car may move, in stage units per second (metersPerUnit applied)
        self._max_speed_units = settings.max_car_speed / (reader.meters_per_unit or 1.0)
        self._polled_boxes = [
            (*g.minimum, *g.maximum) for g in self.detector.gates
            if self.detector.polled_gates is None or g.path in self.detector.polled_gates
        ]
        self._camera_for_gate = dict(zip(settings.gate_prim_paths, settings.camera_prim_paths))
        self._reports: list[tuple[str, str, bool]] = []
        self._reports_lock = threading.Lock()
        self.stats = SessionStats()
        self.started = False
        self.ended = False

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def start(self) -> simgate_pb2.RunStart:
        cameras = []
        for path in self.settings.camera_prim_paths:
            try:
                cameras.append((self.reader.camera_info(path), self.settings.image_width, self.settings.image_height))
            except LookupError as exc:
                log.warning("simgate: %s; it is left out of the run's lineage", exc)
        message = self.run.run_start(
            stage_identity=self.reader.stage_identity(),
            producer_version=self.producer_version,
            cameras=cameras,
            scenario=self.settings.scenario,
            extra={
                "detection": self.settings.detection,
                "gates": ",".join(self.settings.gate_prim_paths),
                "metersPerUnit": repr(self.reader.meters_per_unit),
                "upAxis": self.reader.up_axis,
            },
        )
        self._sink(message)
        self.started = True
        return message

    def end(self, reason: str = "completed") -> Optional[simgate_pb2.RunEnd]:
        if not self.started or self.ended:
            return None
        self._deliver_awaiting(captures=None)  # every event before the run's end, with its picture
        self.ended = True
        message = self.run.run_end(reason)
        self._sink(message)
        return message

    # --- inputs from the adapter -------------------------------------------------------------

    def on_trigger(self, trigger_prim: str, other_prim: str, entered: bool) -> None:
        """May be called from the physics callback: only queued here, handled in on_update."""
        with self._reports_lock:
            self._reports.append((trigger_prim, other_prim, entered))

    def on_update(self, sim_time: float) -> list[simgate_pb2.Event]:
        if not self.started or self.ended:
            return []
        if self._awaiting:
            self._deliver_awaiting(captures=1)
        crossings: list[GateCrossing] = []
        with self._reports_lock:
            reports, self._reports = self._reports, []
        for trigger_prim, other_prim, entered in reports:
            self.stats.trigger_reports += 1
            car = self.reader.car_for(other_prim)
            if car is None or self.detector.gate_for(trigger_prim) is None:
                self.stats.ignored_reports += 1
                continue
            try:
                position = self.reader.position(car, sim_time)
            except LookupError as exc:
                self.stats.read_errors += 1
                log.warning("simgate: trigger report for %s: %s", car, exc)
                continue
            crossings += self.detector.on_trigger(trigger_prim, car, entered, position, sim_time)
        polled = self._cars_to_poll(sim_time)
        if polled:
            positions = self.reader.car_positions(sim_time, polled)
            crossings += self.detector.on_positions(positions, sim_time)
            self._schedule(positions, sim_time)
        return [self._emit(crossing) for crossing in crossings]

    def _car_list(self, sim_time: float) -> list[str]:
        """The cars on the stage, listed again every ``CAR_LIST_REFRESH_S`` of simulation time (listing the
        stage's prims every update costs more than the rest of the update)."""
        if self._cars is None or abs(sim_time - self._cars_listed_at) >= CAR_LIST_REFRESH_S:
            self._cars = self.reader.car_paths()
            self._cars_listed_at = sim_time
        return self._cars

    def _cars_to_poll(self, sim_time: float) -> list[str]:
        """The cars whose position must be checked now: not covered by trigger reports at every gate, and
        close enough to a polled gate to reach it before their next check (``maxCarSpeed``)."""
        detector = self.detector
        all_gates_covered = len(detector.trigger_gates) == len(detector.gates)
        if self._polled_gates_only and all_gates_covered:
            return []
        cars = self._car_list(sim_time)
        if all_gates_covered:
            cars = [car for car in cars if car not in detector.trigger_cars]
        if sim_time < self._last_time:  # the timeline jumped back: check everything again
            self._next_check.clear()
        self._last_time = sim_time
        return [car for car in cars if self._next_check.get(car, float("-inf")) <= sim_time]

    def _schedule(self, positions: list[tuple[str, tuple[float, float, float]]], sim_time: float) -> None:
        """A car at distance d from the nearest polled gate cannot reach it for d / maxCarSpeed seconds; a car
        inside a gate is checked every update."""
        boxes = self._polled_boxes
        if not boxes:
            return
        speed, next_check = self._max_speed_units, self._next_check
        for car, (x, y, z) in positions:
            nearest = math.inf
            for lx, ly, lz, hx, hy, hz in boxes:
                dx = lx - x if x < lx else (x - hx if x > hx else 0.0)
                dy = ly - y if y < ly else (y - hy if y > hy else 0.0)
                dz = lz - z if z < lz else (z - hz if z > hz else 0.0)
                d2 = dx * dx + dy * dy + dz * dz
                if d2 < nearest:
                    nearest = d2
            next_check[car] = sim_time + math.sqrt(nearest) / speed

    def release_stage(self) -> None:
        """The stage is closing or the run is over: keep no reference to it."""
        self.reader = None  # type: ignore[assignment]
        self._frames = None

    # --- one event ---------------------------------------------------------------------------

    def _emit(self, crossing: GateCrossing) -> simgate_pb2.Event:
        attributes: dict[str, str] = {}
        with_coordinates = True
        try:
            car = self.reader.car_state(crossing.car_path, crossing.sim_time)
        except LookupError as exc:
            self.stats.read_errors += 1
            attributes["readError"] = str(exc)[:200]
            car = CarState(crossing.car_path, crossing.car_path.rsplit("/", 1)[-1], "", 0.0, 0.0, 0.0, 0.0)
            with_coordinates = False
        images = []
        camera = self._camera_for_gate.get(crossing.gate_path)
        view = "entry" if crossing.direction == "in" else "exit"
        if camera and self._frames is not None and not self._defer_pictures:
            captured = self._capture(camera, view, attributes)
            if captured is not None:
                images.append(captured)
        event = self.run.event(crossing, car, images, attributes=attributes, with_coordinates=with_coordinates)
        self.stats.events += 1
        if camera and self._frames is not None and self._defer_pictures:
            self._awaiting.append((event, camera, view))  # sent with its picture on the next update
        else:
            self._sink(event)
        return event

    def _deliver_awaiting(self, captures: Optional[int]) -> None:
        """Sends the events that wait for their picture, in order: one frame per camera serves all its events
        of this update; ``captures`` frames at most (None: all, at the run's end)."""
        taken: dict[str, tuple[Any, str]] = {}
        while self._awaiting:
            event, camera, view = self._awaiting[0]
            if camera not in taken:
                if captures is not None and len(taken) >= captures:
                    return
                taken[camera] = self._capture_array(camera)
            self._awaiting.popleft()
            array, error = taken[camera]
            if array is None:
                event.attributes["imageError"] = error
                self._sink(event)
                continue
            self.stats.images += 1
            self._sink(WithPictures(event, [Picture(view, camera, array)]))

    def _capture_array(self, camera: str) -> tuple[Any, str]:
        """The frame source's array (checked, not copied) or None and why: bytes and Image are made on the
        worker."""
        if self._frames is None:
            return None, "no frame rendered yet"
        try:
            data = self._frames(camera)
        except Exception as exc:  # the renderer is outside our control: keep the event, note why
            self.stats.images_missing += 1
            return None, f"capture failed: {type(exc).__name__}: {exc}"[:200]
        if data is None:
            self.stats.images_missing += 1
            return None, "no frame rendered yet"
        try:
            check_pixels(data)
        except ImageEncodingError as exc:
            self.stats.image_errors += 1
            return None, str(exc)[:200]
        return data, ""

    def _capture(self, camera: str, view: str, attributes: dict[str, str]) -> Optional[CapturedImage]:
        assert self._frames is not None
        try:
            data = self._frames(camera)
        except Exception as exc:  # the renderer is outside our control: keep the event, note why
            data = None
            attributes["imageError"] = f"capture failed: {type(exc).__name__}: {exc}"[:200]
        if data is None:
            self.stats.images_missing += 1
            attributes.setdefault("imageError", "no frame rendered yet")
            return None
        try:
            frame = data if isinstance(data, RgbaFrame) else RgbaFrame.from_array(data)
            encoded = encode(frame, self._encoding, self.settings.jpeg_quality)
        except ImageEncodingError as exc:
            self.stats.image_errors += 1
            attributes["imageError"] = str(exc)[:200]
            log.warning("simgate: image from %s not encoded: %s", camera, exc)
            return None
        self.stats.images += 1
        return CapturedImage(view, camera, encoded)
