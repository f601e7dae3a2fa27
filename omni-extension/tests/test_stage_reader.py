"""The USD-reading code on a real stage built with usd-core."""

from __future__ import annotations

import pytest
from pxr import Gf, Sdf

from parking_lot import CAMERAS, GATES, build_parking_lot
from simgate.parking.stage_reader import StageReader


@pytest.fixture()
def reader() -> StageReader:
    return StageReader(build_parking_lot())


def test_gate_volumes_come_from_the_world_bounds_and_the_inward_attribute(reader: StageReader) -> None:
    entry, exit_ = reader.gate_volumes(GATES)
    assert entry.minimum == pytest.approx((-50, -150, 0))
    assert entry.maximum == pytest.approx((50, 150, 200))
    assert entry.inward == pytest.approx((1, 0, 0))
    assert exit_.center == pytest.approx((0, 600, 100))
    assert (entry.name, exit_.name) == ("entry", "exit")


def test_a_gate_without_inward_attribute_uses_its_local_x_axis(reader: StageReader) -> None:
    gate = reader.stage.GetPrimAtPath("/World/Gates/Exit")
    gate.RemoveProperty("simgate:inward")
    from pxr import UsdGeom

    UsdGeom.Xformable(gate).AddRotateZOp(opSuffix="turn").Set(90.0)
    (volume,) = reader.gate_volumes(["/World/Gates/Exit"])
    assert volume.inward == pytest.approx((0, 1, 0), abs=1e-9)


def test_a_missing_gate_is_a_clear_error(reader: StageReader) -> None:
    with pytest.raises(LookupError, match="/World/Gates/Nope"):
        reader.gate_volumes(["/World/Gates/Nope"])


def test_cars_are_the_children_of_the_cars_root_and_colliders_map_to_their_car(reader: StageReader) -> None:
    assert reader.car_paths() == ["/World/Cars/Car1", "/World/Cars/Car2", "/World/Cars/Car3"]
    assert reader.car_for("/World/Cars/Car2/Body") == "/World/Cars/Car2"
    assert reader.car_for("/World/Gates/Entry") is None


def test_positions_follow_the_animation(reader: StageReader) -> None:
    assert reader.position("/World/Cars/Car1", 0.0) == pytest.approx((-500, 0, 50))
    assert reader.position("/World/Cars/Car1", 1.0) == pytest.approx((0, 0, 50))
    assert reader.position("/World/Cars/Car1", 3.0) == pytest.approx((750, 0, 50))


def test_car_state_in_metres_with_slot_and_yaw(reader: StageReader) -> None:
    parked = reader.car_state("/World/Cars/Car1", 4.0)
    assert parked.car_id == "12GA3456"
    assert parked.slot_id == "B-07"  # inside the slot's footprint
    assert (parked.x, parked.y, parked.z) == pytest.approx((10.0, 0.0, 0.5))
    assert parked.yaw_deg == pytest.approx(90.0)
    at_gate = reader.car_state("/World/Cars/Car1", 1.0)
    assert at_gate.slot_id == "B-07"  # not in a slot yet: the one it is heading for
    leaving = reader.car_state("/World/Cars/Car2", 2.0)
    assert (leaving.car_id, leaving.slot_id) == ("34XY7890", "")
    assert leaving.yaw_deg == pytest.approx(180.0)
    waiting = reader.car_state("/World/Cars/Car2", 0.5)
    assert waiting.slot_id == "C-01"


def test_car_id_defaults_to_the_prim_name(reader: StageReader) -> None:
    reader.stage.GetPrimAtPath("/World/Cars/Car3").RemoveProperty("simgate:carId")
    assert reader.car_state("/World/Cars/Car3", 0.0).car_id == "Car3"


def test_y_up_stage_in_metres_gives_yaw_around_y() -> None:
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    car = UsdGeom.Xform.Define(stage, "/World/Cars/A")
    car.AddTranslateOp().Set(Gf.Vec3d(3, 0, -4))
    car.AddRotateYOp().Set(30.0)
    state = StageReader(stage).car_state("/World/Cars/A", 0.0)
    assert (state.x, state.y, state.z) == pytest.approx((3, 0, -4))
    assert state.yaw_deg == pytest.approx(30.0)


def test_camera_intrinsics_and_stage_identity(reader: StageReader) -> None:
    info = reader.camera_info(CAMERAS[0])
    assert (info.focal_length_mm, info.horizontal_aperture_mm, info.vertical_aperture_mm) == (35.0, 36.0, 20.25)
    with pytest.raises(LookupError):
        reader.camera_info("/World/Gates/Entry")  # a cube, not a camera
    before = reader.stage_identity()
    assert "parking-lot.usda" in before and "#sha256:" in before
    assert reader.stage_identity() == before
    reader.stage.GetPrimAtPath("/World/Slots/B07").GetAttribute("simgate:slotId").Set("B-08")
    assert reader.stage_identity() != before


def test_stage_saved_to_disk_reads_the_same(tmp_path) -> None:
    path = str(tmp_path / "lot.usda")
    stage = build_parking_lot(path)
    stage.GetRootLayer().Save()
    from pxr import Usd

    reopened = StageReader(Usd.Stage.Open(path))
    assert reopened.car_state("/World/Cars/Car1", 4.0).slot_id == "B-07"
    assert Sdf.Layer.FindOrOpen(path) is not None
