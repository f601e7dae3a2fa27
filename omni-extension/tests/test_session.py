"""One run on the real USD parking lot: crossings become events with car, slot, coordinates, image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from parking_lot import CAMERAS, GATES, TCPS, build_parking_lot
from simgate.parking.session import ParkingSession
from simgate.parking.settings import ParkingSettings
from simgate.parking.stage_reader import StageReader
from simgate.v1 import simgate_pb2


def settings(**overrides) -> ParkingSettings:
    base = dict(gate_prim_paths=GATES, camera_prim_paths=CAMERAS, image_width=32, image_height=24, debounce_seconds=0.5)
    base.update(overrides)
    return ParkingSettings(**base)


class Frames:
    """Stands in for the rgb annotators: a distinct colour per camera."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, camera: str):
        self.calls.append(camera)
        pixels = np.zeros((24, 32, 4), np.uint8)
        pixels[..., 0 if "Entry" in camera else 2] = 255
        pixels[..., 3] = 255
        return pixels


def play(session: ParkingSession, seconds: float = 5.0) -> list[simgate_pb2.Event]:
    events = []
    for frame in range(int(seconds * TCPS) + 1):
        events += session.on_update(frame / TCPS)
    return events


def test_a_run_produces_run_start_entry_exit_and_run_end() -> None:
    sent: list = []
    frames = Frames()
    session = ParkingSession(settings(), StageReader(build_parking_lot()), sent.append, frames, "0.1.0", run_id="run-t1",
                             clock_ms=lambda: 1_790_000_000_000)
    start = session.start()
    events = play(session)
    end = session.end("stopped")

    assert sent[0] is start and sent[-1] is end and sent[1:-1] == events
    assert start.run_id == "run-t1" and start.lineage.source == "omniverse" and start.lineage.producer_version == "0.1.0"
    assert "parking-lot.usda#sha256:" in start.lineage.stage_identity
    assert [c.camera_prim_path for c in start.lineage.cameras] == list(CAMERAS)
    assert (start.lineage.cameras[0].width, start.lineage.cameras[0].focal_length_mm) == (32, 35.0)

    # Car1 is through the entry gate at ~1.1 s, Car2 through the exit at ~1.6 s; Car3 turned back: no event
    assert [(e.event_type, e.car_id) for e in events] == [("parking.entry", "12GA3456"), ("parking.exit", "34XY7890")]
    by_type = {e.event_type: e for e in events}
    entry, exit_ = by_type["parking.entry"], by_type["parking.exit"]
    assert [e.sequence for e in events] == [1, 2]
    assert {e.event_id for e in events} == {"run-t1-000001", "run-t1-000002"}
    assert entry.coordinates.slot_id == "B-07"
    assert 0.5 <= entry.coordinates.x <= 1.5 and entry.coordinates.z == pytest.approx(0.5)  # metres, just past the gate
    assert entry.attributes["gate"] == "entry" and entry.attributes["detectedBy"] == "position"
    assert exit_.coordinates.yaw_deg == pytest.approx(180.0) and exit_.attributes["gate"] == "exit"
    assert entry.capture_time_unix_ms == 1_790_000_000_000
    assert 1.0 < entry.sim_time_seconds < 2.0

    (image,) = entry.images
    assert (image.view, image.camera_prim_path, image.encoding, image.width, image.height) == (
        "entry", CAMERAS[0], simgate_pb2.IMAGE_ENCODING_PNG, 32, 24)
    decoded = np.asarray(Image.open(io.BytesIO(image.data)))
    assert decoded[0, 0, 0] == 255 and decoded[0, 0, 2] == 0
    assert exit_.images[0].view == "exit" and exit_.images[0].camera_prim_path == CAMERAS[1]

    assert end.events_sent == 2 and dict(end.events_by_type) == {"parking.entry": 1, "parking.exit": 1}
    assert end.reason == "stopped"
    assert session.end() is None  # once


def test_trigger_reports_from_colliders_below_car_and_gate() -> None:
    sent: list = []
    session = ParkingSession(settings(detection="trigger"), StageReader(build_parking_lot()), sent.append, None, run_id="run-t2")
    session.start()
    # the physics callback only queues; the update handles it with the car's position at that time
    session.on_trigger("/World/Gates/Entry", "/World/Cars/Car1/Body", True)
    assert session.on_update(1.0 - 2 / TCPS) == []
    session.on_trigger("/World/Gates/Entry", "/World/Cars/Car1/Body", False)
    session.on_trigger("/World/Gates/Entry", "/World/Props/Cone", True)  # not a car: ignored, counted
    (event,) = session.on_update(1.0 + 3 / TCPS)
    assert (event.event_type, event.car_id, event.attributes["detectedBy"]) == ("parking.entry", "12GA3456", "trigger")
    assert len(event.images) == 0  # no frame source configured
    assert session.stats.ignored_reports == 1 and session.stats.trigger_reports == 3


def test_no_frame_yet_or_a_broken_frame_keeps_the_event_and_says_why() -> None:
    sent: list = []
    answers = iter([None, np.zeros((3, 3), np.uint8)])
    session = ParkingSession(settings(), StageReader(build_parking_lot()), sent.append, lambda cam: next(answers), run_id="r3")
    session.start()
    events = play(session)
    assert len(events) == 2 and all(len(e.images) == 0 for e in events)
    reasons = sorted(e.attributes["imageError"] for e in events)
    assert reasons[0].startswith("EXT_ERR_IMAGE_PIXELS") and reasons[1] == "no frame rendered yet"
    assert (session.stats.images_missing, session.stats.image_errors) == (1, 1)


def test_a_car_removed_from_the_stage_still_yields_its_event_without_coordinates() -> None:
    from simgate.parking.gates import GateCrossing

    stage = build_parking_lot()
    sent: list = []
    session = ParkingSession(settings(), StageReader(stage), sent.append, None, run_id="r4")
    session.start()
    stage.RemovePrim("/World/Cars/Car1")
    event = session._emit(GateCrossing("/World/Gates/Entry", "entry", "/World/Cars/Car1", "in", 1.2, "trigger"))
    assert event.car_id == "Car1" and not event.HasField("coordinates") and "readError" in event.attributes
    assert sent[-1] is event and session.stats.read_errors == 1


def test_without_encoding_the_session_attaches_raw_rgba_for_the_worker_to_encode() -> None:
    sent: list = []
    session = ParkingSession(settings(), StageReader(build_parking_lot()), sent.append, Frames(), run_id="r5",
                             encode_images=False)
    session.start()
    events = play(session)
    image = events[0].images[0]
    assert image.encoding == simgate_pb2.IMAGE_ENCODING_RAW_RGBA8 and len(image.data) == 32 * 24 * 4


def test_deferred_pictures_leave_the_array_to_the_worker_thread() -> None:
    from simgate.parking.events import WithPictures
    from simgate.parking.outbox import frame_of

    sent: list = []
    session = ParkingSession(settings(), StageReader(build_parking_lot()), sent.append, Frames(), run_id="r6",
                             encode_images=False, defer_pictures=True)
    session.start()
    events = play(session)
    assert events and not events[0].images  # nothing copied into the message on the simulation thread
    deferred = [m for m in sent if isinstance(m, WithPictures)]
    assert len(deferred) == len(events)
    built = frame_of(deferred[0]).event  # on the worker: bytes and the Image message
    image = built.images[0]
    assert image.encoding == simgate_pb2.IMAGE_ENCODING_RAW_RGBA8 and len(image.data) == 32 * 24 * 4
    assert built.event_id == events[0].event_id and not deferred[0].event.images  # the original is untouched
