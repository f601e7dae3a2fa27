"""Reading the parking lot from the USD stage (pxr only; no omni imports).

Stage conventions (see docs/README.md):
- gates: boundable prims (e.g. a Cube that also carries the PhysX trigger); the optional attribute
  ``simgate:inward`` (float3/double3, world space) points into the lot, else the gate's local +X axis;
- cars: the children of ``carsRootPath``; the plate in ``simgate:carId`` (string), else the prim name;
  an optional relationship ``simgate:targetSlot`` to the slot the car is heading for;
- slots: the children of ``slotsRootPath``; the id in ``simgate:slotId``, else the prim name; a car is
  in a slot when its position lies within the slot's footprint (its bounds, ignoring the up axis).
Coordinates in events are metres (``metersPerUnit`` applied) and the yaw is around the stage's up axis.

Rigid bodies: when PhysX does not write its poses back to USD (``/physics/updateToUsd`` false) the adapter
sets ``rigid_body_pose`` (path -> ((x, y, z), (qx, qy, qz, qw)) or None) and a rigid body's position and yaw
come from there instead of the stale USD transform.
PhysX trigger set-up (``physics_setup``): a gate reports triggers only with ``UsdPhysics.CollisionAPI`` and
``PhysxSchema.PhysxTriggerAPI`` (read as an applied schema name, so usd-core can check it too), and only
for cars that are rigid bodies (``UsdPhysics.RigidBodyAPI`` on the car or above its collider).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

from pxr import Gf, Usd, UsdGeom, UsdPhysics

from .gates import GateVolume, Vec3


@dataclass(frozen=True)
class CarState:
    car_path: str
    car_id: str
    slot_id: str
    x: float
    y: float
    z: float
    yaw_deg: float


Pose = tuple[Vec3, tuple[float, float, float, float]]  # position, quaternion (x, y, z, w)
TRIGGER_API = "PhysxTriggerAPI"


def applied_schemas(prim: Usd.Prim) -> set[str]:
    """The API schemas applied to a prim, by name, including those whose plug-in this USD build lacks
    (PhysxSchema is Kit's; usd-core's GetAppliedSchemas leaves unknown names out)."""
    names = set(prim.GetAppliedSchemas())
    list_op = prim.GetMetadata("apiSchemas")
    if list_op is not None:
        names.update(str(n) for n in list_op.GetAddedOrExplicitItems())
    return names


@dataclass
class PhysicsSetup:
    """What PhysX trigger reports can cover on this stage, checked when a run starts."""

    good_gates: list[str] = field(default_factory=list)
    bad_gates: dict[str, list[str]] = field(default_factory=dict)  # gate -> what it lacks
    rigid_cars: set[str] = field(default_factory=set)
    polled_cars: set[str] = field(default_factory=set)  # not rigid bodies: no trigger reports


@dataclass(frozen=True)
class CameraInfo:
    camera_prim_path: str
    focal_length_mm: float
    horizontal_aperture_mm: float
    vertical_aperture_mm: float


class StageReader:
    def __init__(self, stage: Usd.Stage, cars_root_path: str = "/World/Cars", slots_root_path: str = "/World/Slots") -> None:
        self.stage = stage
        self.cars_root_path = cars_root_path.rstrip("/")
        self.slots_root_path = slots_root_path.rstrip("/")
        self.meters_per_unit = float(UsdGeom.GetStageMetersPerUnit(stage)) or 1.0
        self.up_axis = str(UsdGeom.GetStageUpAxis(stage))
        self._tcps = float(stage.GetTimeCodesPerSecond()) or 24.0
        self.rigid_body_pose: Optional[Callable[[str], Optional[Pose]]] = None
        self._rigid: dict[str, bool] = {}
        self._slots: Optional[list[tuple[str, Vec3, Vec3]]] = None
        self._prims: dict[str, Usd.Prim] = {}  # path lookups cost more than the transform
        self._cache_time: Optional[float] = None
        self._cache: Optional[UsdGeom.XformCache] = None

    # --- time ------------------------------------------------------------------------------

    def time_code(self, sim_time_seconds: float) -> Usd.TimeCode:
        """Kit's timeline time is seconds; USD time codes are seconds × timeCodesPerSecond."""
        return Usd.TimeCode(sim_time_seconds * self._tcps)

    # --- gates -----------------------------------------------------------------------------

    def gate_volumes(self, paths: tuple[str, ...] | list[str], sim_time: float = 0.0) -> list[GateVolume]:
        time = self.time_code(sim_time)
        cache = UsdGeom.BBoxCache(time, [UsdGeom.Tokens.default_, UsdGeom.Tokens.render, UsdGeom.Tokens.proxy])
        gates = []
        for path in paths:
            prim = self.stage.GetPrimAtPath(path)
            if not prim or not prim.IsValid():
                raise LookupError(f"gate prim {path} is not on the stage")
            box = cache.ComputeWorldBound(prim).ComputeAlignedRange()
            if box.IsEmpty():
                raise LookupError(f"gate prim {path} has no extent (use a boundable prim such as a Cube)")
            inward_attr = prim.GetAttribute("simgate:inward")
            if inward_attr and inward_attr.HasAuthoredValue():
                inward = tuple(float(c) for c in inward_attr.Get(time))
            else:
                world = UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(time)
                inward = tuple(float(c) for c in world.TransformDir(Gf.Vec3d(1, 0, 0)))
            lo, hi = box.GetMin(), box.GetMax()
            gates.append(GateVolume(path, (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]), inward))  # type: ignore[arg-type]
        return gates

    # --- cars ------------------------------------------------------------------------------

    def car_paths(self) -> list[str]:
        root = self.stage.GetPrimAtPath(self.cars_root_path)
        if not root:
            return []
        prefix = self.cars_root_path + "/"
        return [prefix + name for name in root.GetChildrenNames()]  # active, defined children (the cheap way)

    def car_for(self, prim_path: str) -> Optional[str]:
        """The car a prim belongs to (a PhysX report names the collider, often below the car)."""
        prefix = self.cars_root_path + "/"
        if not prim_path.startswith(prefix):
            return None
        name = prim_path[len(prefix) :].split("/", 1)[0]
        return prefix + name if name else None

    def is_rigid_body(self, car_path: str) -> bool:
        known = self._rigid.get(car_path)
        if known is None:
            prim = self.stage.GetPrimAtPath(car_path)
            known = bool(prim) and prim.HasAPI(UsdPhysics.RigidBodyAPI)
            self._rigid[car_path] = known
        return known

    def _physx_pose(self, prim_path: str) -> Optional[Pose]:
        if self.rigid_body_pose is None or not self.is_rigid_body(prim_path):
            return None
        return self.rigid_body_pose(prim_path)

    def _world(self, prim: Usd.Prim, sim_time: float) -> Gf.Matrix4d:
        """The prim's world transform from one XformCache per update (shared ancestors computed once)."""
        if self._cache is None or self._cache_time != sim_time:
            self._cache = UsdGeom.XformCache(self.time_code(sim_time))
            self._cache_time = sim_time
        return self._cache.GetLocalToWorldTransform(prim)

    def position(self, prim_path: str, sim_time: float) -> Vec3:
        """World position in stage units."""
        pose = self._physx_pose(prim_path)
        if pose is not None:
            return (float(pose[0][0]), float(pose[0][1]), float(pose[0][2]))
        prim = self._prims.get(prim_path)
        if prim is None or not prim.IsValid():
            prim = self.stage.GetPrimAtPath(prim_path)
            if not prim:
                raise LookupError(f"prim {prim_path} is not on the stage")
            self._prims[prim_path] = prim
        t = self._world(prim, sim_time).ExtractTranslation()
        return (t[0], t[1], t[2])  # indexing: unpacking a Gf.Vec3d iterates until IndexError (3x the cost)

    def car_positions(self, sim_time: float, paths: Optional[list[str]] = None) -> list[tuple[str, Vec3]]:
        return [(path, self.position(path, sim_time)) for path in (self.car_paths() if paths is None else paths)]

    def physics_setup(self, gate_paths: tuple[str, ...] | list[str]) -> PhysicsSetup:
        setup = PhysicsSetup()
        for path in gate_paths:
            prim = self.stage.GetPrimAtPath(path)
            problems = []
            if not prim or not prim.HasAPI(UsdPhysics.CollisionAPI):
                problems.append("no UsdPhysics.CollisionAPI")
            if not prim or TRIGGER_API not in applied_schemas(prim):
                problems.append("no PhysxSchema.PhysxTriggerAPI")
            if problems:
                setup.bad_gates[path] = problems
            else:
                setup.good_gates.append(path)
        for car in self.car_paths():
            (setup.rigid_cars if self.is_rigid_body(car) else setup.polled_cars).add(car)
        return setup

    def car_state(self, car_path: str, sim_time: float) -> CarState:
        prim = self.stage.GetPrimAtPath(car_path)
        if not prim:
            raise LookupError(f"car prim {car_path} is not on the stage")
        time = self.time_code(sim_time)
        pose = self._physx_pose(car_path)
        if pose is not None:
            (px, py, pz), (qx, qy, qz, qw) = pose
            t = Gf.Vec3d(px, py, pz)
            forward = Gf.Rotation(Gf.Quatd(qw, qx, qy, qz)).TransformDir(Gf.Vec3d(1, 0, 0))
        else:
            world = self._world(prim, sim_time)
            t = world.ExtractTranslation()
            forward = world.TransformDir(Gf.Vec3d(1, 0, 0))
        if self.up_axis == "Z":
            yaw = math.degrees(math.atan2(forward[1], forward[0]))
        else:  # Y-up: a turn by θ around +Y maps +X to (cos θ, 0, -sin θ)
            yaw = math.degrees(math.atan2(-forward[2], forward[0]))
        car_id_attr = prim.GetAttribute("simgate:carId")
        car_id = str(car_id_attr.Get()) if car_id_attr and car_id_attr.HasAuthoredValue() else prim.GetName()
        position = (float(t[0]), float(t[1]), float(t[2]))
        slot_id = self._slot_containing(position, time) or self._target_slot(prim)
        m = self.meters_per_unit
        return CarState(car_path, car_id, slot_id, position[0] * m, position[1] * m, position[2] * m, round(yaw, 6))

    # --- slots -----------------------------------------------------------------------------

    def _slot_id(self, prim: Usd.Prim) -> str:
        attr = prim.GetAttribute("simgate:slotId")
        return str(attr.Get()) if attr and attr.HasAuthoredValue() else prim.GetName()

    def slot_footprints(self, time: Usd.TimeCode = Usd.TimeCode.Default()) -> list[tuple[str, Vec3, Vec3]]:
        """Each slot's id and world bounds, computed once per reader (a run): slots do not move."""
        if self._slots is None:
            self._slots = []
            root = self.stage.GetPrimAtPath(self.slots_root_path)
            if root:
                cache = UsdGeom.BBoxCache(time, [UsdGeom.Tokens.default_, UsdGeom.Tokens.render])
                for slot in root.GetChildren():
                    box = cache.ComputeWorldBound(slot).ComputeAlignedRange()
                    if box.IsEmpty():
                        continue
                    lo, hi = box.GetMin(), box.GetMax()
                    self._slots.append((self._slot_id(slot), (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])))
        return self._slots

    def _slot_containing(self, position: Vec3, time: Usd.TimeCode) -> str:
        up = 2 if self.up_axis == "Z" else 1
        for slot_id, lo, hi in self.slot_footprints(time):
            if all(lo[i] <= position[i] <= hi[i] for i in range(3) if i != up):
                return slot_id
        return ""

    def _target_slot(self, car: Usd.Prim) -> str:
        rel = car.GetRelationship("simgate:targetSlot")
        if not rel:
            return ""
        targets = rel.GetTargets()
        if not targets:
            return ""
        slot = self.stage.GetPrimAtPath(targets[0])
        return self._slot_id(slot) if slot else ""

    # --- lineage ---------------------------------------------------------------------------

    def camera_info(self, camera_path: str) -> CameraInfo:
        prim = self.stage.GetPrimAtPath(camera_path)
        if not prim or not prim.IsA(UsdGeom.Camera):
            raise LookupError(f"camera prim {camera_path} is not a Camera on the stage")
        cam = UsdGeom.Camera(prim)
        return CameraInfo(
            camera_path,
            float(cam.GetFocalLengthAttr().Get()),
            float(cam.GetHorizontalApertureAttr().Get()),
            float(cam.GetVerticalApertureAttr().Get()),
        )

    def stage_identity(self) -> str:
        """The root layer's identifier and a hash of its content: changes when the stage is edited."""
        layer = self.stage.GetRootLayer()
        digest = hashlib.sha256(layer.ExportToString().encode("utf-8")).hexdigest()[:16]
        return f"{layer.identifier}#sha256:{digest}"
