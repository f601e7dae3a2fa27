"""The Kit extension: a thin adapter between omni.* and the plain modules of this package (the only file
of the extension that imports ``omni`` or ``carb``).

Kit API followed, Kit 107 (Isaac Sim 5.x) first, Kit 106.5 where that is missing:
- ``omni.ext.IExt``: ``on_startup(ext_id)`` / ``on_shutdown()``; ext ids are ``name[-tag]-version``;
- events, Kit 107: ``carb.eventdispatcher.get_eventdispatcher().observe_event(event_name=..., on_event=fn,
  observer_name=..., filter=...)`` returns an ObserverGuard, released with ``.reset()``; the names are
  ``omni.kit.app.GLOBAL_EVENT_UPDATE``, ``omni.timeline.GLOBAL_EVENT_PLAY/STOP`` (filtered by the
  timeline's ``get_event_key()``) and ``omni.usd.get_context().stage_event_name(StageEventType.CLOSING)``;
- events, Kit 106 (when those names do not exist): ``get_app().get_update_event_stream()``,
  ``get_timeline_event_stream()`` and ``get_context().get_stage_event_stream()``, each
  ``.create_subscription_to_pop(fn, name=...)``, released with ``.unsubscribe()``; ``event.type`` compared
  with ``int(TimelineEventType.PLAY/STOP)`` / ``int(StageEventType.CLOSING)``;
- ``omni.timeline.get_timeline_interface()``: ``play()`` takes effect on the next update (so a run starts on
  the PLAY event, not on the call), ``is_playing()``, ``get_current_time()`` (seconds);
- ``carb.settings.get_settings().get(path)``; ``/physics/updateToUsd``: when false PhysX does not write
  rigid-body poses back to USD, so they are read from ``omni.physx.get_physx_interface()
  .get_rigidbody_transformation(path)`` (``{"ret_val", "position", "rotation" (x, y, z, w)}``);
- ``omni.physx``: ``get_physx_simulation_interface().subscribe_physics_trigger_report_events(fn)`` -> int id,
  ``unsubscribe_physics_trigger_report_events(id)``; ``TriggerEventData`` with ``event_type``
  (``TriggerEventType.TRIGGER_ON_ENTER/LEAVE``), ``trigger_collider_prim_id`` / ``other_collider_prim_id``
  decoded by ``PhysicsSchemaTools.intToSdfPath``. Reports come only from colliders with
  ``UsdPhysics.CollisionAPI`` + ``PhysxSchema.PhysxTriggerAPI`` and only for rigid bodies: each gate's set-up is
  checked on play and the position check covers what triggers cannot;
- ``omni.replicator.core``: ``create.render_product(camera_path, (w, h))`` (``.destroy()``),
  ``AnnotatorRegistry.get_annotator("rgb", do_array_copy=False)`` with ``.attach([rp])``, ``.get_data()``
  (the latest frame the renderer finished: at least one frame behind the simulation, sometimes none yet),
  ``.detach()``. Made with ``do_array_copy=False``, ``get_data()`` returns a view of Replicator's host buffer,
  which the next finished frame overwrites; passing ``do_array_copy=False`` to ``get_data`` alone does not do
  that (Replicator then falls back to the annotator's own setting, True by default, and returns a new array).
  The view is copied at once, in the same callback, into a recycled buffer (images.FramePool).
  On the GPU (``captureDevice`` cuda, or auto where Warp finds a CUDA device): ``get_annotator("rgb",
  device="cuda", do_array_copy=False)``, whose ``get_data()`` is a ``warp.array`` view of Replicator's device
  buffer (rewritten in place by the next finished frame, like the host one). The update copies it on the
  device, ``warp.clone`` inside ``warp.ScopedStream`` on a stream of the extension's own, and waits for that
  stream (``warp.synchronize_stream``: a device-side copy of one frame, not the renderer's queue); the worker
  makes the host copy (``array.numpy()``), so no pixel is touched on the main thread.

The update callback only reads the stage and puts into the outbox: no disk I/O, no serialisation, no lock the
worker can hold. on_shutdown waits at most 1 s for the worker; every release step is guarded on its own.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, Callable, Optional

import carb
import carb.settings
import omni.ext
import omni.kit.app
import omni.timeline
import omni.usd

from .images import FramePool, encode_frame_images
from .recorder import RunRecorder
from .session import ParkingSession
from .settings import SETTINGS_ROOT, ParkingSettings, SettingsError
from .spool import DiskSpool
from .stage_reader import StageReader
from .transports import GrpcTransport, Transport, WebSocketTransport
from .worker import MAX_JOIN_S, GatewayWorker

log = logging.getLogger(__name__)

EXTENSION_NAME = "simgate.parking"
UPDATE_TO_USD = "/physics/updateToUsd"
_current: Optional["ParkingGateExtension"] = None  # the started instance, for the omni.kit.test tests


def current() -> Optional["ParkingGateExtension"]:
    return _current


def _version_of(ext_id: str) -> str:
    # Kit ext ids are "<name>[-<tag>]-<version>"; the version is what the run's lineage records.
    name, _, version = ext_id.rpartition("-")
    return version if name and version else "0.0.0"


def _event_dispatcher() -> Any:
    """Kit 107's carb.eventdispatcher, when this Kit has it and the event names it needs; else None."""
    try:
        import carb.eventdispatcher as eventdispatcher
    except ImportError:
        return None
    names = (getattr(omni.kit.app, "GLOBAL_EVENT_UPDATE", None), getattr(omni.timeline, "GLOBAL_EVENT_PLAY", None),
             getattr(omni.timeline, "GLOBAL_EVENT_STOP", None))
    if not all(names) or not hasattr(omni.usd.get_context(), "stage_event_name"):
        return None
    return eventdispatcher.get_eventdispatcher()


def _release(subscription: Any) -> None:
    if subscription is None:
        return
    if hasattr(subscription, "reset"):  # Kit 107 ObserverGuard
        subscription.reset()
    else:  # Kit 106 event stream subscription
        subscription.unsubscribe()


class ParkingGateExtension(omni.ext.IExt):
    def on_startup(self, ext_id: str) -> None:
        global _current
        _current = self
        self._ext_id = ext_id
        self._version = _version_of(ext_id)
        self._subscriptions: list[Any] = []
        self._physx: Any = None
        self._trigger_sub_id: Optional[int] = None
        self._captures: dict[str, tuple[Any, Any]] = {}  # camera path -> (render product, annotator)
        self._views: dict[str, bool] = {}  # camera path -> its annotator hands over views (do_array_copy=False)
        self._frame_pool: Optional[FramePool] = None
        self._warp: Any = None  # the warp module while the cameras capture on the GPU
        self._streams: dict[str, Any] = {}  # device -> the extension's own CUDA stream for the device-side copies
        self._session: Optional[ParkingSession] = None
        self._worker: Optional[GatewayWorker] = None
        self._recorder: Optional[RunRecorder] = None
        self._update_errors = 0
        self.event_api = "none"

        raw = carb.settings.get_settings().get(SETTINGS_ROOT) or {}
        try:
            self._settings: Optional[ParkingSettings] = ParkingSettings.from_mapping(raw)
        except SettingsError as exc:
            carb.log_error(f"[{EXTENSION_NAME}] bad setting under {SETTINGS_ROOT}: {exc}; the extension stays idle")
            self._settings = None
            return
        s = self._settings

        # Built here, opened on the worker's thread (lock, lazy index): no disk I/O on Kit's main thread.
        spool = DiskSpool(self._spool_dir(), s.spool_max_bytes, s.spool_max_events, s.spool_lock_wait_ms / 1000)
        # Images leave the simulation thread as raw RGBA; PNG/JPEG encoding happens on these threads.
        encoding, quality = s.image_encoding, s.jpeg_quality
        prepare = lambda frame: encode_frame_images(frame, encoding, quality)  # noqa: E731
        self._worker = GatewayWorker(
            self._transport_factory(),
            spool,
            outbox_capacity=s.outbox_capacity,
            outbox_policy=s.outbox_full_policy,
            max_in_flight=s.max_in_flight,
            reconnect_initial_ms=s.reconnect_initial_ms,
            reconnect_max_ms=s.reconnect_max_ms,
            prepare=prepare,
        )
        self._worker.start()
        if s.recording_dir:
            self._recorder = RunRecorder(s.recording_dir, f"simgate-omni-extension/{self._version}", prepare=prepare)

        self._timeline = omni.timeline.get_timeline_interface()
        self._subscribe()
        if self._timeline.is_playing():
            self._begin_run()  # enabled while the simulation is already running

    def on_shutdown(self) -> None:
        """Every step is guarded on its own: a failing release never keeps the worker running."""
        self._guarded("end the run", lambda: self._end_run("extension shutdown"))
        subscriptions, self._subscriptions = getattr(self, "_subscriptions", []), []
        for subscription in subscriptions:
            self._guarded("release a subscription", lambda sub=subscription: _release(sub))
        worker, self._worker = getattr(self, "_worker", None), None
        if worker is not None:
            settings = getattr(self, "_settings", None)
            flush_s = min((settings.shutdown_flush_ms if settings else 0) / 1000, MAX_JOIN_S)
            self._guarded("stop the worker", lambda: worker.stop(flush_s, MAX_JOIN_S))
        pool, self._frame_pool = getattr(self, "_frame_pool", None), None
        if pool is not None:
            self._guarded("stop the frame pool's thread", pool.close)
        recorder, self._recorder = getattr(self, "_recorder", None), None
        if recorder is not None:
            self._guarded("close the recording", lambda: recorder.close(MAX_JOIN_S))
        self._session = None
        global _current
        if _current is self:
            _current = None

    def _guarded(self, what: str, step: Callable[[], Any]) -> None:
        try:
            step()
        except Exception as exc:
            carb.log_error(f"[{EXTENSION_NAME}] shutdown: could not {what}: {type(exc).__name__}: {exc}")

    @property
    def worker(self) -> Optional[GatewayWorker]:
        return self._worker

    # --- wiring --------------------------------------------------------------------------------

    def _spool_dir(self) -> str:
        assert self._settings is not None
        if self._settings.spool_dir:
            try:
                import carb.tokens

                return carb.tokens.get_tokens_interface().resolve(self._settings.spool_dir)
            except Exception:
                return self._settings.spool_dir
        return os.path.join(tempfile.gettempdir(), "simgate-spool")

    def _transport_factory(self) -> Callable[[], Transport]:
        s = self._settings
        assert s is not None
        if s.transport == "ws":
            return lambda: WebSocketTransport(s.gateway_ws_url, s.token)
        root_certs: Optional[bytes] = None
        if s.tls and s.tls_root_certs_path:
            with open(s.tls_root_certs_path, "rb") as fh:  # once, at start-up (a few KB)
                root_certs = fh.read()
        return lambda: GrpcTransport(s.gateway_address, s.token, tls=s.tls, root_certs=root_certs)

    def _subscribe(self) -> None:
        dispatcher = _event_dispatcher()
        context = omni.usd.get_context()
        if dispatcher is not None:  # Kit 107+
            self.event_api = "carb.eventdispatcher"
            key = self._timeline.get_event_key() if hasattr(self._timeline, "get_event_key") else None
            observe = dispatcher.observe_event
            self._subscriptions += [
                observe(event_name=omni.kit.app.GLOBAL_EVENT_UPDATE, on_event=self._on_update,
                        observer_name=f"{EXTENSION_NAME}:update"),
                observe(event_name=omni.timeline.GLOBAL_EVENT_PLAY, on_event=lambda _e: self._begin_run(),
                        observer_name=f"{EXTENSION_NAME}:play", filter=key),
                observe(event_name=omni.timeline.GLOBAL_EVENT_STOP, on_event=lambda _e: self._end_run("stopped"),
                        observer_name=f"{EXTENSION_NAME}:stop", filter=key),
                observe(event_name=context.stage_event_name(omni.usd.StageEventType.CLOSING),
                        on_event=lambda _e: self._on_stage_closing(), observer_name=f"{EXTENSION_NAME}:stage-closing"),
            ]
            return
        self.event_api = "event streams"  # Kit 106
        self._subscriptions += [
            omni.kit.app.get_app().get_update_event_stream().create_subscription_to_pop(
                self._on_update, name=f"{EXTENSION_NAME} update"),
            self._timeline.get_timeline_event_stream().create_subscription_to_pop(
                self._on_timeline_event, name=f"{EXTENSION_NAME} timeline"),
            context.get_stage_event_stream().create_subscription_to_pop(
                self._on_stage_event, name=f"{EXTENSION_NAME} stage"),
        ]

    # --- timeline and stage: one run per play ... stop --------------------------------------------

    def _on_timeline_event(self, event: Any) -> None:
        kind = event.type
        if kind == int(omni.timeline.TimelineEventType.PLAY):
            self._begin_run()
        elif kind == int(omni.timeline.TimelineEventType.STOP):
            self._end_run("stopped")
            # PAUSE keeps the run open: play resumes it.

    def _on_stage_event(self, event: Any) -> None:
        if event.type == int(omni.usd.StageEventType.CLOSING):
            self._on_stage_closing()

    def _on_stage_closing(self) -> None:
        """The run ends, cameras and triggers are released, and nothing keeps the old stage."""
        self._end_run("stage closing")

    def _begin_run(self) -> None:
        if self._session is not None or self._settings is None or self._worker is None:
            return
        stage = omni.usd.get_context().get_stage()
        if stage is None:
            carb.log_warn(f"[{EXTENSION_NAME}] no stage open: nothing to watch")
            return
        settings = self._settings
        reader = StageReader(stage, settings.cars_root_path, settings.slots_root_path)
        if carb.settings.get_settings().get(UPDATE_TO_USD) is False:
            reader.rigid_body_pose = self._rigid_body_pose  # PhysX does not write poses back to USD
        try:
            self._open_cameras()
            session = ParkingSession(
                settings, reader, self._send, self._latest_frame, self._version, encode_images=False,
                defer_pictures=True,
            )
        except LookupError as exc:
            carb.log_error(f"[{EXTENSION_NAME}] the stage does not fit the settings: {exc}")
            self._close_cameras()
            return
        self._session = session
        setup = session.physics
        for gate, problems in setup.bad_gates.items():
            carb.log_warn(f"[{EXTENSION_NAME}] gate {gate} cannot report PhysX triggers ({'; '.join(problems)}): "
                          "its crossings are found by checking car positions")
        if settings.detection in ("auto", "trigger") and setup.polled_cars and setup.good_gates:
            carb.log_info(f"[{EXTENSION_NAME}] {len(setup.polled_cars)} car(s) are not rigid bodies (no trigger "
                          "reports): checked by position")
        if settings.detection in ("auto", "trigger") and setup.good_gates:
            self._subscribe_triggers()
        session.start()
        carb.log_info(f"[{EXTENSION_NAME}] run {session.run_id} started")

    def _send(self, message: Any) -> bool:
        """The session's sink: never waits (outbox put; the recording copy is queued too)."""
        if self._recorder is not None:
            self._recorder.record(message)
        assert self._worker is not None
        return self._worker.submit(message)

    def _end_run(self, reason: str) -> None:
        self._guarded("unsubscribe the trigger reports", self._unsubscribe_triggers)
        session, self._session = getattr(self, "_session", None), None
        if session is not None:
            self._guarded("end the run", lambda: session.end(reason))
            carb.log_info(f"[{EXTENSION_NAME}] run {session.run_id} ended ({reason}): {session.stats}")
            session.release_stage()
        self._close_cameras()

    def _on_update(self, _event: Any) -> None:
        session = self._session
        if session is None or not self._timeline.is_playing():
            return
        try:
            session.on_update(float(self._timeline.get_current_time()))
        except Exception as exc:  # never break Kit's update loop; say it, a few times
            self._update_errors += 1
            if self._update_errors <= 5:
                carb.log_error(f"[{EXTENSION_NAME}] update failed: {type(exc).__name__}: {exc}")

    # --- PhysX -----------------------------------------------------------------------------------

    def _rigid_body_pose(self, path: str) -> Any:
        from omni.physx import get_physx_interface

        pose = get_physx_interface().get_rigidbody_transformation(path)
        if not pose or not pose.get("ret_val", False):
            return None
        return tuple(pose["position"]), tuple(pose["rotation"])  # rotation: x, y, z, w

    def _subscribe_triggers(self) -> None:
        from omni.physx import get_physx_simulation_interface

        self._physx = get_physx_simulation_interface()
        self._trigger_sub_id = self._physx.subscribe_physics_trigger_report_events(self._on_trigger_report)

    def _unsubscribe_triggers(self) -> None:
        physx, sub_id = getattr(self, "_physx", None), getattr(self, "_trigger_sub_id", None)
        self._physx, self._trigger_sub_id = None, None
        if physx is not None and sub_id is not None:
            physx.unsubscribe_physics_trigger_report_events(sub_id)

    def _on_trigger_report(self, data: Any) -> None:
        from omni.physx.bindings._physx import TriggerEventType
        from pxr import PhysicsSchemaTools

        session = self._session
        if session is None:
            return
        session.on_trigger(
            str(PhysicsSchemaTools.intToSdfPath(data.trigger_collider_prim_id)),
            str(PhysicsSchemaTools.intToSdfPath(data.other_collider_prim_id)),
            data.event_type == TriggerEventType.TRIGGER_ON_ENTER,
        )

    # --- cameras: one render product and rgb annotator per gate camera ----------------------------

    def _capture_on_gpu(self) -> Any:
        """The warp module when frames are to be copied on the GPU, else None (captureDevice, and whether Warp
        finds a CUDA device: Kit on an RTX machine)."""
        assert self._settings is not None
        wanted = self._settings.capture_device
        if wanted == "cpu":
            return None
        try:
            import warp  # Kit's omni.warp.core, which Replicator itself uses

            if warp.is_cuda_available():
                return warp
            why = "Warp finds no CUDA device"
        except Exception as exc:  # noqa: BLE001 - no Warp, or it cannot start: the host path works everywhere
            why = f"Warp is not available ({type(exc).__name__}: {exc})"
        if wanted == "cuda":
            carb.log_warn(f"[{EXTENSION_NAME}] captureDevice = cuda, but {why}: frames are copied on the host")
        return None

    def _open_cameras(self) -> None:
        import omni.replicator.core as rep

        assert self._settings is not None
        resolution = (self._settings.image_width, self._settings.image_height)
        self._warp = self._capture_on_gpu()
        if self._warp is None:
            if self._frame_pool is None:
                self._frame_pool = FramePool()
            # Buffers touched at run start rather than during an update: two per camera now, two more on a
            # thread of its own; the pool grows there too when the worker falls behind (images.FramePool).
            shape, cameras = (resolution[1], resolution[0], 4), len(self._settings.camera_prim_paths)
            self._frame_pool.prepare(shape, 2 * cameras)
            self._frame_pool.prepare_in_background(shape, 4 * cameras)
        for camera in self._settings.camera_prim_paths:
            render_product = rep.create.render_product(camera, resolution)
            self._captures[camera] = (render_product, None)
            if self._warp is not None:  # a view of Replicator's device buffer, copied on the device
                annotator = rep.AnnotatorRegistry.get_annotator("rgb", device="cuda", do_array_copy=False)
                self._views[camera] = True
            else:
                try:  # a view of Replicator's buffer, copied into the pool (no allocation on the update)
                    annotator = rep.AnnotatorRegistry.get_annotator("rgb", do_array_copy=False)
                    self._views[camera] = True
                except TypeError:  # a Replicator without the argument: its get_data copies
                    annotator = rep.AnnotatorRegistry.get_annotator("rgb")
                    self._views[camera] = False
            annotator.attach([render_product])
            self._captures[camera] = (render_product, annotator)

    def _close_cameras(self) -> None:
        captures, self._captures = getattr(self, "_captures", {}), {}
        self._views = {}
        self._warp, self._streams = None, {}
        for camera, (render_product, annotator) in captures.items():
            if annotator is not None:
                self._guarded(f"detach the annotator of {camera}", annotator.detach)
            self._guarded(f"destroy the render product of {camera}", render_product.destroy)

    def _latest_frame(self, camera: str) -> Any:
        """The annotator's latest finished frame (a frame or more behind the simulation), without stepping
        the renderer, as an array of our own (the view copied into the pool before this callback returns);
        None when it has none yet."""
        capture = self._captures.get(camera)
        if capture is None or capture[1] is None:
            return None
        data = capture[1].get_data()
        if data is None or getattr(data, "size", 0) == 0:
            return None
        wp = self._warp
        if wp is not None:
            # A device-side copy, waited for before the renderer can rewrite its buffer; the host copy is the
            # worker's (events.WithPictures.build). The stream is on the frame's own GPU (Warp orders a copy on
            # the destination device's current stream), made once per device.
            device = str(data.device)
            stream = self._streams.get(device)
            if stream is None:
                stream = self._streams[device] = wp.Stream(device)
            with wp.ScopedStream(stream):
                frame = wp.clone(data)
            wp.synchronize_stream(stream)
            return frame
        if not self._views.get(camera) or self._frame_pool is None:
            return data  # already a copy of its own
        return self._frame_pool.copy_of(data)
