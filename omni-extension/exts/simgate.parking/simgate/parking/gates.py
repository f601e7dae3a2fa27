"""Entry/exit detection at the gates (plain Python, no omni or pxr imports).

Two sources feed one state machine per (gate, car):
- PhysX trigger reports (enter/leave of a car's collider in the gate's trigger volume), the first way;
- a position check on every update (is the car's position inside the gate volume?), the fallback for
  cars moved by animation, which PhysX does not report.

A crossing is decided when the car leaves the volume: it came in from one side of the gate plane and
left on the other. The gate's ``inward`` vector points into the lot, so outside → inside is an entry
and inside → outside an exit; leaving on the side it came from is no crossing (the car turned back).
A car that jumps over the whole volume between two updates (fast car, slow frame) is caught by a
segment-against-box test. The same (gate, car, direction) within ``debounce_seconds`` is reported
once: that also removes the duplicate when both sources see the same crossing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional

Vec3 = tuple[float, float, float]

ENTRY = "parking.entry"
EXIT = "parking.exit"


def _sub(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def normalised(v: Vec3) -> Vec3:
    length = math.sqrt(_dot(v, v))
    if length == 0 or not math.isfinite(length):
        raise ValueError(f"cannot normalise {v!r}")
    return (v[0] / length, v[1] / length, v[2] / length)


@dataclass(frozen=True)
class GateVolume:
    """An axis-aligned box in world coordinates (stage units) and the direction into the lot."""

    path: str
    minimum: Vec3
    maximum: Vec3
    inward: Vec3
    name: str = ""

    def __post_init__(self) -> None:
        if any(lo > hi for lo, hi in zip(self.minimum, self.maximum)):
            raise ValueError(f"gate {self.path}: minimum {self.minimum} exceeds maximum {self.maximum}")
        object.__setattr__(self, "inward", normalised(self.inward))
        object.__setattr__(self, "_center", self.center)
        if not self.name:
            object.__setattr__(self, "name", self.path.rstrip("/").rsplit("/", 1)[-1].lower())

    @property
    def center(self) -> Vec3:
        return tuple((lo + hi) / 2 for lo, hi in zip(self.minimum, self.maximum))  # type: ignore[return-value]

    def contains(self, p: Vec3) -> bool:
        lo, hi = self.minimum, self.maximum
        return lo[0] <= p[0] <= hi[0] and lo[1] <= p[1] <= hi[1] and lo[2] <= p[2] <= hi[2]

    def side(self, p: Vec3) -> int:
        """+1 on the lot side of the gate's mid-plane, -1 on the street side, 0 on the plane."""
        c, n = self._center, self.inward
        d = (p[0] - c[0]) * n[0] + (p[1] - c[1]) * n[1] + (p[2] - c[2]) * n[2]
        return (d > 0) - (d < 0)

    def distance(self, p: Vec3) -> float:
        """From a point to the box (0 inside), stage units."""
        lo, hi = self.minimum, self.maximum
        dx = max(lo[0] - p[0], 0.0, p[0] - hi[0])
        dy = max(lo[1] - p[1], 0.0, p[1] - hi[1])
        dz = max(lo[2] - p[2], 0.0, p[2] - hi[2])
        return math.sqrt(dx * dx + dy * dy + dz * dz)

    def segment_hits(self, a: Vec3, b: Vec3) -> bool:
        """Whether the segment a→b passes through the box (slab test)."""
        t0, t1 = 0.0, 1.0
        for axis in range(3):
            d = b[axis] - a[axis]
            lo, hi = self.minimum[axis], self.maximum[axis]
            if d == 0:
                if not lo <= a[axis] <= hi:
                    return False
                continue
            u0, u1 = (lo - a[axis]) / d, (hi - a[axis]) / d
            if u0 > u1:
                u0, u1 = u1, u0
            t0, t1 = max(t0, u0), min(t1, u1)
            if t0 > t1:
                return False
        return True


@dataclass(frozen=True)
class GateCrossing:
    gate_path: str
    gate_name: str
    car_path: str
    direction: str  # "in" (into the lot) or "out"
    sim_time: float
    source: str  # "trigger" or "position"

    @property
    def event_type(self) -> str:
        return ENTRY if self.direction == "in" else EXIT


@dataclass
class _Track:
    inside: bool = False
    entered_from: int = 0  # side the car was on when it entered; 0 = unknown
    last_side: int = 0  # side while outside, for fast cars that skip the volume
    last_position: Optional[Vec3] = None
    trigger_driven: bool = False


@dataclass
class DetectorStats:
    crossings: int = 0
    debounced: int = 0
    turned_back: int = 0
    unknown_gate_reports: int = 0


@dataclass
class GateDetector:
    gates: list[GateVolume]
    debounce_seconds: float = 1.0
    use_triggers: bool = True
    use_positions: bool = True
    # Pairs that PhysX trigger reports cover (gate set up as a trigger x car that is a rigid body): the
    # position check skips them.
    trigger_gates: frozenset = frozenset()
    trigger_cars: frozenset = frozenset()
    # When set, the position check looks at these gates only (detection "trigger": the fallback gates).
    polled_gates: Optional[frozenset] = None
    stats: DetectorStats = field(default_factory=DetectorStats)

    def __post_init__(self) -> None:
        self._by_path = {g.path: g for g in self.gates}
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._last_reported: dict[tuple[str, str, str], float] = {}

    def reset(self) -> None:
        """Forget every car (timeline stopped: positions jump back to the start)."""
        self._tracks.clear()
        self._last_reported.clear()

    def is_inside(self, gate_path: str, car_path: str) -> bool:
        track = self._tracks.get((gate_path, car_path))
        return track is not None and track.inside

    def gate_for(self, prim_path: str) -> Optional[GateVolume]:
        """The gate a prim belongs to: the gate itself or any descendant (its collider)."""
        path = prim_path
        while path:
            gate = self._by_path.get(path)
            if gate is not None:
                return gate
            if path == "/":
                break
            path = path.rsplit("/", 1)[0] or "/"
        return None

    # --- the two sources -------------------------------------------------------------------

    def on_trigger(self, gate_prim: str, car_path: str, entered: bool, position: Vec3, sim_time: float) -> list[GateCrossing]:
        """A PhysX trigger report: ``gate_prim`` is the trigger collider (the gate or below it)."""
        gate = self.gate_for(gate_prim)
        if gate is None:
            self.stats.unknown_gate_reports += 1
            return []
        if not self.use_triggers:
            return []
        track = self._track(gate, car_path)
        track.trigger_driven = True
        out = self._transition(gate, car_path, track, entered, position, sim_time, "trigger")
        track.last_position = position
        return out

    def on_positions(self, positions: Iterable[tuple[str, Vec3]], sim_time: float) -> list[GateCrossing]:
        """The fallback: every car's current position, checked against every gate volume."""
        if not self.use_positions:
            return []
        out: list[GateCrossing] = []
        for car_path, position in positions:
            for gate in self.gates:
                if self.polled_gates is not None and gate.path not in self.polled_gates:
                    continue
                track = self._track(gate, car_path)
                if track.trigger_driven or (
                    self.use_triggers and gate.path in self.trigger_gates and car_path in self.trigger_cars
                ):
                    track.last_position = position
                    continue
                inside = gate.contains(position)
                previous = track.last_position
                if inside != track.inside:
                    out += self._transition(gate, car_path, track, inside, position, sim_time, "position")
                elif (
                    not inside
                    and previous is not None
                    and gate.side(previous) * gate.side(position) < 0
                    and gate.segment_hits(previous, position)
                ):
                    # Jumped over the whole volume between two updates.
                    track.inside, track.entered_from = True, gate.side(previous)
                    out += self._transition(gate, car_path, track, False, position, sim_time, "position")
                if not track.inside:
                    track.last_side = gate.side(position) or track.last_side
                track.last_position = position
        return out

    # --- the state machine -----------------------------------------------------------------

    def _track(self, gate: GateVolume, car_path: str) -> _Track:
        key = (gate.path, car_path)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track()
        return track

    def _transition(
        self, gate: GateVolume, car_path: str, track: _Track, entered: bool, position: Vec3, sim_time: float, source: str
    ) -> list[GateCrossing]:
        if entered:
            if not track.inside:
                track.inside = True
                # The side it came from: where it was last seen outside, else where it is now.
                track.entered_from = track.last_side or gate.side(position)
            return []
        if not track.inside:
            return []  # a leave without an enter (started inside, or a duplicate report)
        track.inside = False
        came_from, left_to = track.entered_from, gate.side(position)
        track.last_side = left_to or track.last_side
        if came_from == 0 or left_to == 0 or came_from == left_to:
            self.stats.turned_back += 1
            return []
        direction = "in" if left_to > 0 else "out"
        key = (gate.path, car_path, direction)
        last = self._last_reported.get(key)
        if last is not None and abs(sim_time - last) < self.debounce_seconds:
            self.stats.debounced += 1
            return []
        self._last_reported[key] = sim_time
        self.stats.crossings += 1
        return [GateCrossing(gate.path, gate.name, car_path, direction, sim_time, source)]
