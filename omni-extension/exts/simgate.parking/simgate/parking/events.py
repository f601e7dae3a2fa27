"""Building the wire messages (simgate.v1) for one run: events, run start and run end."""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from .wire import simgate_pb2

from .gates import GateCrossing
from .images import EncodedImage, RgbaFrame
from .stage_reader import CameraInfo, CarState

ID_ALPHABET = re.compile(r"[^A-Za-z0-9._:-]")
VIEW_ALPHABET = re.compile(r"[^a-z0-9_-]")


def sanitise_id(value: str, limit: int = 128) -> str:
    cleaned = ID_ALPHABET.sub("-", value)[:limit]
    if not cleaned:
        raise ValueError(f"id {value!r} has no usable characters")
    return cleaned


def new_run_id(prefix: str, now_ms: Optional[int] = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime((now_ms if now_ms is not None else time.time() * 1000) / 1000))
    return sanitise_id(f"{prefix}-{stamp}-{secrets.token_hex(4)}", 96)


@dataclass(frozen=True)
class CapturedImage:
    view: str
    camera_prim_path: str
    image: EncodedImage


@dataclass(frozen=True)
class Picture:
    view: str
    camera_prim_path: str
    pixels: Any  # the annotator's (h, w, 3|4) uint8 array, never changed after capture


class WithPictures:
    """An event whose pictures are still the renderer's arrays. ``build()`` (worker or recorder thread)
    returns a new Event with RAW_RGBA8 Image messages; the event itself is never changed, so several
    threads may build from it."""

    __slots__ = ("event", "pictures")

    def __init__(self, event: simgate_pb2.Event, pictures: list[Picture]) -> None:
        self.event, self.pictures = event, pictures

    def build(self) -> simgate_pb2.Event:
        out = simgate_pb2.Event()
        out.CopyFrom(self.event)
        for picture in self.pictures:
            frame = RgbaFrame.from_array(picture.pixels)
            out.images.add(
                view=VIEW_ALPHABET.sub("-", picture.view.lower())[:32],
                camera_prim_path=picture.camera_prim_path,
                encoding=simgate_pb2.IMAGE_ENCODING_RAW_RGBA8,
                width=frame.width,
                height=frame.height,
                data=frame.pixels,
            )
        return out


class RunEvents:
    """Numbers the events of one run (sequence from 1) and counts them by type."""

    def __init__(self, run_id: str, clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.run_id = sanitise_id(run_id)
        self._clock_ms = clock_ms
        self._sequence = 0
        self.counts: Counter[str] = Counter()

    @property
    def events_sent(self) -> int:
        return self._sequence

    def event(
        self,
        crossing: GateCrossing,
        car: CarState,
        images: Iterable[CapturedImage] = (),
        text: str = "",
        attributes: Optional[Mapping[str, str]] = None,
        with_coordinates: bool = True,
    ) -> simgate_pb2.Event:
        self._sequence += 1
        event = simgate_pb2.Event(
            event_id=f"{self.run_id}-{self._sequence:06d}",
            run_id=self.run_id,
            sequence=self._sequence,
            event_type=crossing.event_type,
            sim_time_seconds=float(crossing.sim_time),
            capture_time_unix_ms=self._clock_ms(),
            car_id=car.car_id,
            text=text or f"plate {car.car_id}",
        )
        if with_coordinates:
            event.coordinates.CopyFrom(
                simgate_pb2.ParkingCoordinates(slot_id=car.slot_id, x=car.x, y=car.y, z=car.z, yaw_deg=car.yaw_deg)
            )
        for captured in images:
            event.images.add(
                view=VIEW_ALPHABET.sub("-", captured.view.lower())[:32],
                camera_prim_path=captured.camera_prim_path,
                encoding=captured.image.encoding,
                width=captured.image.width,
                height=captured.image.height,
                data=captured.image.data,
            )
        event.attributes.update(
            {"gate": crossing.gate_name, "direction": crossing.direction, "detectedBy": crossing.source, "carPrim": car.car_path}
        )
        if attributes:
            event.attributes.update({str(k): str(v) for k, v in attributes.items()})
        self.counts[crossing.event_type] += 1
        return event

    def run_start(
        self,
        stage_identity: str,
        producer_version: str,
        cameras: Iterable[tuple[CameraInfo, int, int]] = (),
        scenario: str = "",
        extra: Optional[Mapping[str, str]] = None,
    ) -> simgate_pb2.RunStart:
        lineage = simgate_pb2.Lineage(
            source="omniverse", scenario=scenario, stage_identity=stage_identity, seed=0, producer_version=producer_version
        )
        for info, width, height in cameras:
            lineage.cameras.add(
                camera_prim_path=info.camera_prim_path,
                width=width,
                height=height,
                focal_length_mm=info.focal_length_mm,
                horizontal_aperture_mm=info.horizontal_aperture_mm,
                vertical_aperture_mm=info.vertical_aperture_mm,
            )
        if extra:
            lineage.extra.update({str(k): str(v) for k, v in extra.items()})
        return simgate_pb2.RunStart(run_id=self.run_id, started_unix_ms=self._clock_ms(), lineage=lineage)

    def run_end(self, reason: str = "completed") -> simgate_pb2.RunEnd:
        end = simgate_pb2.RunEnd(run_id=self.run_id, ended_unix_ms=self._clock_ms(), events_sent=self._sequence, reason=reason)
        for event_type, count in sorted(self.counts.items()):
            end.events_by_type[event_type] = count
        return end
