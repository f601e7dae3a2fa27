"""Gate logic: both detection modes, direction of travel, debounce, fast cars."""

from __future__ import annotations

import pytest

from simgate.parking.gates import ENTRY, EXIT, GateDetector, GateVolume

GATE = GateVolume("/World/Gates/Entry", (-1.0, -2.0, 0.0), (1.0, 2.0, 2.0), (1.0, 0.0, 0.0))
CAR = "/World/Cars/Car1"


def drive(detector: GateDetector, xs: list[float], t0: float = 0.0, dt: float = 0.1, car: str = CAR):
    out = []
    for i, x in enumerate(xs):
        out += detector.on_positions([(car, (x, 0.0, 1.0))], t0 + i * dt)
    return out


def test_gate_volume_geometry() -> None:
    assert GATE.contains((0.0, 0.0, 1.0)) and not GATE.contains((1.5, 0.0, 1.0))
    assert GATE.side((-3.0, 0.0, 1.0)) == -1 and GATE.side((3.0, 0.0, 1.0)) == 1 and GATE.side((0.0, 5.0, 1.0)) == 0
    assert GATE.segment_hits((-5.0, 0.0, 1.0), (5.0, 0.0, 1.0))
    assert not GATE.segment_hits((-5.0, 3.0, 1.0), (5.0, 3.0, 1.0))  # passes beside the gate
    assert GateVolume("/g", (0, 0, 0), (1, 1, 1), (0, 0, 5)).inward == (0, 0, 1)
    with pytest.raises(ValueError):
        GateVolume("/g", (1, 0, 0), (0, 1, 1), (1, 0, 0))
    with pytest.raises(ValueError):
        GateVolume("/g", (0, 0, 0), (1, 1, 1), (0, 0, 0))


def test_driving_in_is_an_entry_and_driving_out_an_exit() -> None:
    detector = GateDetector([GATE], debounce_seconds=1.0)
    (entry,) = drive(detector, [-3, -2, -0.5, 0.5, 2, 3])
    assert (entry.event_type, entry.direction, entry.source, entry.car_path) == (ENTRY, "in", "position", CAR)
    assert entry.sim_time == pytest.approx(0.4)  # decided when it left the volume on the lot side
    (exit_,) = drive(detector, [3, 0.5, -0.5, -3], t0=10.0)
    assert (exit_.event_type, exit_.direction) == (EXIT, "out")
    assert detector.stats.crossings == 2


def test_turning_back_inside_the_gate_is_no_crossing() -> None:
    detector = GateDetector([GATE])
    assert drive(detector, [-3, -0.5, 0.0, -0.5, -3]) == []
    assert detector.stats.turned_back == 1


def test_a_car_that_starts_inside_the_gate_reports_nothing_until_it_has_really_crossed() -> None:
    detector = GateDetector([GATE])
    assert drive(detector, [0.0, 2.0, 3.0]) == []  # side of entry unknown
    assert len(drive(detector, [0.5, -2.0], t0=5)) == 1  # came in from the lot side, left to the street


def test_a_fast_car_that_jumps_over_the_volume_is_still_seen() -> None:
    detector = GateDetector([GATE])
    (crossing,) = drive(detector, [-5.0, 5.0])
    assert crossing.direction == "in"


def test_jitter_at_the_boundary_is_debounced() -> None:
    detector = GateDetector([GATE], debounce_seconds=1.0)
    events = drive(detector, [-3, 0, 3, 0.5, 3, 0.5, 3], dt=0.05)  # crosses, then wobbles in and out on the lot side
    assert len(events) == 1
    # a real second entry after the debounce window counts again
    drive(detector, [0.5, -3], t0=2.0)
    assert len(drive(detector, [-3, 0, 3], t0=4.0)) == 1


def test_a_second_crossing_within_the_debounce_window_is_dropped_and_counted() -> None:
    detector = GateDetector([GATE], debounce_seconds=5.0)
    assert len(drive(detector, [-3, 0, 3])) == 1
    assert len(drive(detector, [3, 0, -3], t0=0.5)) == 1  # the other direction is its own key
    assert drive(detector, [-3, 0, 3], t0=1.0) == []
    assert detector.stats.debounced == 1


def test_trigger_reports_drive_the_state_machine() -> None:
    detector = GateDetector([GATE])
    collider = "/World/Gates/Entry/Trigger"  # a collider below the gate prim belongs to the gate
    assert detector.on_trigger(collider, CAR, True, (-0.9, 0.0, 1.0), 1.0) == []
    (crossing,) = detector.on_trigger(collider, CAR, False, (1.1, 0.0, 1.0), 1.5)
    assert (crossing.direction, crossing.source, crossing.gate_name) == ("in", "trigger", "entry")


def test_with_both_sources_the_trigger_wins_and_there_is_one_event() -> None:
    detector = GateDetector([GATE], debounce_seconds=1.0)
    out = []
    for i, x in enumerate([-3, -0.9, 0.5, 1.1, 3]):
        t = i * 0.1
        if x == -0.9:
            out += detector.on_trigger(GATE.path, CAR, True, (x, 0, 1), t)
        if x == 1.1:
            out += detector.on_trigger(GATE.path, CAR, False, (x, 0, 1), t)
        out += detector.on_positions([(CAR, (x, 0.0, 1.0))], t)
    assert [c.source for c in out] == ["trigger"]


def test_an_animated_car_is_caught_by_the_position_fallback_while_another_uses_triggers() -> None:
    detector = GateDetector([GATE])
    detector.on_trigger(GATE.path, "/World/Cars/Physics", True, (-0.9, 0, 1), 0.0)
    out = drive(detector, [-3, 0, 3], car="/World/Cars/Animated")
    out += detector.on_trigger(GATE.path, "/World/Cars/Physics", False, (1.1, 0, 1), 0.5)
    assert sorted((c.car_path, c.source) for c in out) == [
        ("/World/Cars/Animated", "position"),
        ("/World/Cars/Physics", "trigger"),
    ]


def test_modes_can_be_switched_off_and_unknown_gates_are_counted() -> None:
    triggers_only = GateDetector([GATE], use_positions=False)
    assert drive(triggers_only, [-3, 0, 3]) == []
    positions_only = GateDetector([GATE], use_triggers=False)
    positions_only.on_trigger(GATE.path, CAR, True, (-0.9, 0, 1), 0.0)
    assert positions_only.on_trigger(GATE.path, CAR, False, (1.1, 0, 1), 0.1) == []
    assert positions_only.on_trigger("/World/Elsewhere", CAR, True, (0, 0, 0), 0.2) == []
    assert positions_only.stats.unknown_gate_reports == 1


def test_reset_forgets_cars_after_a_timeline_stop() -> None:
    detector = GateDetector([GATE], debounce_seconds=10.0)
    assert len(drive(detector, [-3, 0, 3])) == 1
    detector.reset()  # play again from the start: the same drive is a new entry, not a debounced one
    assert len(drive(detector, [-3, 0, 3])) == 1
