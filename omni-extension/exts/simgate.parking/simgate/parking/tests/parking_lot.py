"""A small parking-lot stage built with pxr (usd-core outside Kit, Kit's own USD inside), shared by the
pytest tests and the omni.kit.test tests (not a test module itself).

Z-up, centimetres (metersPerUnit 0.01, Kit's classic default), 24 time codes per second.
The lot is the x > 0 half-space; the gates stand in the wall at x = 0:
- /World/Gates/Entry: a cube spanning x -50..50, y -150..150, z 0..200, inward +x, with a camera;
- /World/Gates/Exit: the same at y = 600.
- /World/Slots/B07 (slotId "B-07") at (1000, 0), /World/Slots/C01 (slotId "C-01") at (1000, 600).
- Car1 (plate 12GA3456) drives in through the entry gate (t 0..2 s) and parks in B-07 (t 4 s), turning to yaw 90.
- Car2 (plate 34XY7890) waits in C-01, then leaves through the exit gate (t 1..3 s) heading -x (yaw 180).
- Car3 (plate 99ZZ0001) drives into the entry gate and backs out again: no crossing.
With ``physics=True`` the gates are PhysX triggers (``UsdPhysics.CollisionAPI`` + ``PhysxTriggerAPI``) and
Car1 is a kinematic rigid body with a collider, so its passage comes as trigger reports; Car2 and Car3 stay
plain animated prims (found by the position check).
"""

from __future__ import annotations

from typing import Optional

from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics

TCPS = 24.0


def _cube(stage: Usd.Stage, path: str, center: tuple[float, float, float], half: tuple[float, float, float]) -> Usd.Prim:
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(2.0)
    xf = UsdGeom.Xformable(cube)
    xf.AddTranslateOp().Set(Gf.Vec3d(*center))
    xf.AddScaleOp().Set(Gf.Vec3f(*half))
    return cube.GetPrim()


def _car(stage: Usd.Stage, name: str, plate: str, keys: list[tuple[float, tuple[float, float, float], float]], target_slot: str = "") -> Usd.Prim:
    car = UsdGeom.Xform.Define(stage, f"/World/Cars/{name}")
    prim = car.GetPrim()
    prim.CreateAttribute("simgate:carId", Sdf.ValueTypeNames.String).Set(plate)
    translate = car.AddTranslateOp()
    rotate = car.AddRotateZOp()
    for seconds, position, yaw in keys:
        translate.Set(Gf.Vec3d(*position), Usd.TimeCode(seconds * TCPS))
        rotate.Set(float(yaw), Usd.TimeCode(seconds * TCPS))
    body = UsdGeom.Cube.Define(stage, f"/World/Cars/{name}/Body")  # the collider a trigger report would name
    body.CreateSizeAttr(1.0)
    if target_slot:
        prim.CreateRelationship("simgate:targetSlot").SetTargets([Sdf.Path(target_slot)])
    return prim


def make_trigger(prim: Usd.Prim) -> None:
    """UsdPhysics.CollisionAPI + PhysxSchema.PhysxTriggerAPI (PhysxSchema is Kit's; usd-core lacks it)."""
    UsdPhysics.CollisionAPI.Apply(prim)
    try:
        from pxr import PhysxSchema

        PhysxSchema.PhysxTriggerAPI.Apply(prim)
    except ImportError:
        prim.AddAppliedSchema("PhysxTriggerAPI")


def make_rigid_body(car: Usd.Prim, kinematic: bool = True) -> None:
    body = UsdPhysics.RigidBodyAPI.Apply(car)
    body.CreateKinematicEnabledAttr(kinematic)
    for child in car.GetChildren():
        UsdPhysics.CollisionAPI.Apply(child)


def build_parking_lot(path: Optional[str] = None, physics: bool = False) -> Usd.Stage:
    stage = Usd.Stage.CreateNew(path) if path else Usd.Stage.CreateInMemory("parking-lot.usda")
    return populate_parking_lot(stage, physics)


def populate_parking_lot(stage: Usd.Stage, physics: bool = False) -> Usd.Stage:
    """Authors the lot into an existing stage (inside Kit: the open stage of omni.usd)."""
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    stage.SetTimeCodesPerSecond(TCPS)
    stage.SetStartTimeCode(0)
    stage.SetEndTimeCode(6 * TCPS)
    UsdGeom.Xform.Define(stage, "/World")
    UsdGeom.Xform.Define(stage, "/World/Gates")
    for name, y in (("Entry", 0.0), ("Exit", 600.0)):
        gate = _cube(stage, f"/World/Gates/{name}", (0.0, y, 100.0), (50.0, 150.0, 100.0))
        gate.CreateAttribute("simgate:inward", Sdf.ValueTypeNames.Float3).Set(Gf.Vec3f(1, 0, 0))
        if physics:
            make_trigger(gate)
        camera = UsdGeom.Camera.Define(stage, f"/World/Cameras/{name}Camera")
        camera.CreateFocalLengthAttr(35.0)
        camera.CreateHorizontalApertureAttr(36.0)
        camera.CreateVerticalApertureAttr(20.25)
    UsdGeom.Xform.Define(stage, "/World/Slots")
    for name, slot_id, y in (("B07", "B-07", 0.0), ("C01", "C-01", 600.0)):
        slot = _cube(stage, f"/World/Slots/{name}", (1000.0, y, 0.5), (125.0, 250.0, 0.5))
        slot.CreateAttribute("simgate:slotId", Sdf.ValueTypeNames.String).Set(slot_id)
    UsdGeom.Xform.Define(stage, "/World/Cars")
    car1 = _car(stage, "Car1", "12GA3456", [(0, (-500, 0, 50), 0), (2, (500, 0, 50), 0), (4, (1000, 0, 50), 90)], "/World/Slots/B07")
    if physics:
        make_rigid_body(car1)
    _car(stage, "Car2", "34XY7890", [(0, (1000, 600, 50), 180), (1, (1000, 600, 50), 180), (3, (-500, 600, 50), 180)])
    _car(stage, "Car3", "99ZZ0001", [(0, (-500, 0, 50), 0), (1, (0, 0, 50), 0), (2, (-500, 0, 50), 0)])
    return stage


GATES = ("/World/Gates/Entry", "/World/Gates/Exit")
CAMERAS = ("/World/Cameras/EntryCamera", "/World/Cameras/ExitCamera")
