"""The Kit extension: a thin adapter between omni.* and the plain modules of this package.

API followed: Kit 106.5 (kit-manual 106.x) and the extensions that ship with it:
- ``omni.ext.IExt``: ``on_startup(ext_id)`` / ``on_shutdown()``;
- ``carb.settings.get_settings().get("/exts/simgate.parking")`` returns the settings subtree as a dict;
- ``omni.timeline`` 1.0.x: ``get_timeline_interface()``, ``.get_timeline_event_stream()
  .create_subscription_to_pop(fn, name=...)``, ``TimelineEventType.PLAY/PAUSE/STOP``,
  ``.is_playing()``, ``.get_current_time()`` (seconds);
- ``omni.kit.app.get_app().get_update_event_stream().create_subscription_to_pop(fn, name=...)``;
- ``omni.usd.get_context().get_stage()``;
- ``omni.physx`` 106: ``get_physx_simulation_interface().subscribe_physics_trigger_report_events(fn)``
  returns an int id, released with ``unsubscribe_physics_trigger_report_events(id)``; the callback gets a
  ``TriggerEventData`` with ``event_type`` (``TriggerEventType.TRIGGER_ON_ENTER/LEAVE``) and
  ``trigger_collider_prim_id`` / ``other_collider_prim_id`` decoded by ``PhysicsSchemaTools.intToSdfPath``;
- ``omni.replicator.core`` 1.11: ``create.render_product(camera_path, (w, h))`` (``.destroy()``),
  ``AnnotatorRegistry.get_annotator("rgb")`` with ``.attach([rp])``, ``.get_data()``, ``.detach()``.
Everything that can be done without omni lives in the plain modules (session, gates, worker, ...).
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

from .images import encode_frame_images
from .recorder import RunRecorder
from .session import ParkingSession
from .settings import SETTINGS_ROOT, ParkingSettings, SettingsError
from .spool import DiskSpool
from .stage_reader import StageReader
from .transports import GrpcTransport, Transport, WebSocketTransport
from .worker import GatewayWorker

log = logging.getLogger(__name__)

EXTENSION_NAME = "simgate.parking"


def _version_of(ext_id: str) -> str:
    # Kit ext ids are "<name>-<version>"; the version is what the run's lineage records.
    name, _, version = ext_id.rpartition("-")
    return version if name and version else "0.0.0"


class ParkingGateExtension(omni.ext.IExt):
    def on_startup(self, ext_id: str) -> None:
        self._ext_id = ext_id
        self._version = _version_of(ext_id)
        self._timeline_sub: Any = None
        self._update_sub: Any = None
        self._physx: Any = None
        self._trigger_sub_id: Optional[int] = None
        self._captures: dict[str, tuple[Any, Any]] = {}  # camera path -> (render product, annotator)
        self._session: Optional[ParkingSession] = None
        self._worker: Optional[GatewayWorker] = None
        self._recorder: Optional[RunRecorder] = None
        self._update_errors = 0

        raw = carb.settings.get_settings().get(SETTINGS_ROOT) or {}
        try:
            self._settings = ParkingSettings.from_mapping(raw)
        except SettingsError as exc:
            carb.log_error(f"[{EXTENSION_NAME}] bad setting under {SETTINGS_ROOT}: {exc}; the extension stays idle")
            self._settings = None
            return

        spool = DiskSpool(self._spool_dir(), self._settings.spool_max_bytes, self._settings.spool_max_events)
        # Images leave the simulation thread as raw RGBA; PNG/JPEG encoding happens on these threads.
        encoding, quality = self._settings.image_encoding, self._settings.jpeg_quality
        prepare = lambda frame: encode_frame_images(frame, encoding, quality)  # noqa: E731
        self._worker = GatewayWorker(
            self._transport_factory(),
            spool,
            outbox_capacity=self._settings.outbox_capacity,
            max_in_flight=self._settings.max_in_flight,
            reconnect_initial_ms=self._settings.reconnect_initial_ms,
            reconnect_max_ms=self._settings.reconnect_max_ms,
            prepare=prepare,
        )
        self._worker.start()
        if self._settings.recording_dir:
            self._recorder = RunRecorder(
                self._settings.recording_dir, f"simgate-omni-extension/{self._version}", prepare=prepare
            )

        self._timeline = omni.timeline.get_timeline_interface()
        self._timeline_sub = self._timeline.get_timeline_event_stream().create_subscription_to_pop(
            self._on_timeline_event, name=f"{EXTENSION_NAME} timeline"
        )
        self._update_sub = omni.kit.app.get_app().get_update_event_stream().create_subscription_to_pop(
            self._on_update, name=f"{EXTENSION_NAME} update"
        )
        if self._timeline.is_playing():
            self._begin_run()  # enabled while the simulation is already running

    def on_shutdown(self) -> None:
        self._end_run("extension shutdown")
        for name in ("_update_sub", "_timeline_sub"):
            sub = getattr(self, name, None)
            if sub is not None:
                sub.unsubscribe()
            setattr(self, name, None)
        worker, self._worker = getattr(self, "_worker", None), None
        if worker is not None:
            flush_s = (self._settings.shutdown_flush_ms if self._settings else 0) / 1000
            worker.stop(flush_s)
        recorder, self._recorder = getattr(self, "_recorder", None), None
        if recorder is not None:
            recorder.close()

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
        return lambda: GrpcTransport(s.gateway_address, s.token)

    # --- timeline: one run per play ... stop ------------------------------------------------------

    def _on_timeline_event(self, event: Any) -> None:
        kind = event.type
        if kind == int(omni.timeline.TimelineEventType.PLAY):
            self._begin_run()
        elif kind == int(omni.timeline.TimelineEventType.STOP):
            self._end_run("stopped")
            # PAUSE keeps the run open: play resumes it.

    def _begin_run(self) -> None:
        if self._session is not None or self._settings is None or self._worker is None:
            return
        stage = omni.usd.get_context().get_stage()
        if stage is None:
            carb.log_warn(f"[{EXTENSION_NAME}] no stage open: nothing to watch")
            return
        reader = StageReader(stage, self._settings.cars_root_path, self._settings.slots_root_path)
        try:
            self._open_cameras()
            session = ParkingSession(
                self._settings, reader, self._send, self._latest_frame, self._version, encode_images=False
            )
        except LookupError as exc:
            carb.log_error(f"[{EXTENSION_NAME}] the stage does not fit the settings: {exc}")
            self._close_cameras()
            return
        self._session = session
        if self._settings.detection in ("auto", "trigger"):
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
        self._unsubscribe_triggers()
        session, self._session = getattr(self, "_session", None), None
        if session is not None:
            session.end(reason)
            carb.log_info(f"[{EXTENSION_NAME}] run {session.run_id} ended ({reason}): {session.stats}")
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

    # --- PhysX trigger reports -----------------------------------------------------------------

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

    def _open_cameras(self) -> None:
        import omni.replicator.core as rep

        assert self._settings is not None
        resolution = (self._settings.image_width, self._settings.image_height)
        for camera in self._settings.camera_prim_paths:
            render_product = rep.create.render_product(camera, resolution)
            annotator = rep.AnnotatorRegistry.get_annotator("rgb")
            annotator.attach([render_product])
            self._captures[camera] = (render_product, annotator)

    def _close_cameras(self) -> None:
        captures, self._captures = getattr(self, "_captures", {}), {}
        for render_product, annotator in captures.values():
            try:
                annotator.detach()
            finally:
                render_product.destroy()

    def _latest_frame(self, camera: str) -> Any:
        """The annotator's latest frame: what the renderer last produced, without stepping it."""
        capture = self._captures.get(camera)
        if capture is None:
            return None
        data = capture[1].get_data()
        if data is None or getattr(data, "size", 0) == 0:
            return None
        return data
