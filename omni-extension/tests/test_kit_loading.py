"""Load the extension the way Kit does, with stand-ins for omni.*: parse config/extension.toml, import the
declared python module, find the omni.ext.IExt subclass, and run on_startup / play / stop / play /
on_shutdown twice. Events flow to a real gRPC server; afterwards nothing may be left subscribed or running."""

from __future__ import annotations

import importlib
import io
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fake_gateway import FakeGrpcGateway
from kit_standins import Kit
from parking_lot import CAMERAS, TCPS, build_parking_lot

EXT_ROOT = Path(__file__).resolve().parents[1] / "exts" / "simgate.parking"
MANIFEST = tomllib.loads((EXT_ROOT / "config" / "extension.toml").read_text())


def kit_settings(**overrides) -> dict:
    """What Kit puts in carb.settings from [settings], then the command line's --/exts/... overrides."""
    values = {f"/exts/simgate.parking/{k}": v for k, v in MANIFEST["settings"]["exts"]["simgate.parking"].items()}
    values.update({f"/exts/simgate.parking/{k}": v for k, v in overrides.items()})
    return values


def import_extension_classes(kit: Kit) -> list[type]:
    classes = []
    for declared in MANIFEST["python"]["module"]:
        module = importlib.import_module(declared["name"])
        iext = sys.modules["omni.ext"].IExt
        classes += [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, iext) and v is not iext]
    return classes


@pytest.fixture()
def fresh_modules():
    """Import simgate.parking anew (with the stand-ins present) and put the plain one back afterwards."""
    saved = {k: v for k, v in sys.modules.items() if k == "simgate.parking" or k.startswith("simgate.parking.")}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [k for k in sys.modules if k == "simgate.parking" or k.startswith("simgate.parking.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def worker_threads() -> list[threading.Thread]:
    names = ("simgate-gateway-worker", "simgate-run-recorder")
    return [t for t in threading.enumerate() if t.name in names and t.is_alive()]


def run_until(kit: Kit, seconds: float, on_time=None) -> None:
    steps = int(seconds * TCPS)
    for _ in range(steps):
        kit.update()
        if on_time is not None:
            on_time(kit.timeline.get_current_time())


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    assert condition()


def test_manifest_is_kit_app_template_shaped() -> None:
    assert MANIFEST["package"]["version"] and MANIFEST["package"]["readme"] == "docs/README.md"
    assert (EXT_ROOT / MANIFEST["package"]["readme"]).exists() and (EXT_ROOT / MANIFEST["package"]["changelog"]).exists()
    assert {"omni.usd", "omni.timeline", "omni.physx", "omni.replicator.core", "omni.kit.app"} <= set(MANIFEST["dependencies"])
    assert MANIFEST["python"]["module"] == [{"name": "simgate.parking"}]
    assert MANIFEST["test"][0]["dependencies"] == ["omni.kit.test"]
    from simgate.parking.settings import ParkingSettings, setting_keys

    assert sorted(MANIFEST["settings"]["exts"]["simgate.parking"]) == sorted(setting_keys())
    ParkingSettings.from_mapping(MANIFEST["settings"]["exts"]["simgate.parking"])  # the defaults are valid


def test_loaded_like_kit_twice_runs_recovers_across_stop_play_and_releases_everything(
    tmp_path, monkeypatch, fresh_modules
) -> None:
    gateway = FakeGrpcGateway().start()
    kit = Kit(build_parking_lot(), kit_settings(
        gatewayAddress=gateway.address,
        cameraPrimPaths=list(CAMERAS),
        spoolDir=str(tmp_path / "spool"),
        imageWidth=64,
        imageHeight=48,
        debounceSeconds=0.5,
        shutdownFlushMs=5000,
        recordingDir=str(tmp_path / "recordings"),
    ))
    kit.install(monkeypatch)
    try:
        (extension_class,) = import_extension_classes(kit)
        for cycle in range(2):
            extension = extension_class()
            extension.on_startup("simgate.parking-0.1.0")
            assert len(worker_threads()) == 2  # the network worker and the recorder
            assert kit.live() == {"update_subscriptions": 1, "timeline_subscriptions": 1, "trigger_subscriptions": 0,
                                  "render_products": 0, "attached_annotators": 0}

            kit.timeline.play()
            run_until(kit, 0.5)
            assert kit.live()["render_products"] == 2 and kit.live()["trigger_subscriptions"] == 1
            kit.timeline.stop()  # the user stops early: run 1 ends, cameras and triggers are released
            kit.update()
            assert kit.live()["render_products"] == 0 and kit.live()["trigger_subscriptions"] == 0

            def triggers(t: float) -> None:  # Car1 is a PhysX body: its gate passage comes as trigger reports
                if abs(t - 0.95) < 0.5 / TCPS:
                    kit.physx.report("/World/Gates/Entry", "/World/Cars/Car1/Body", True)
                if abs(t - 1.15) < 0.5 / TCPS:
                    kit.physx.report("/World/Gates/Entry", "/World/Cars/Car1/Body", False)

            kit.timeline.play()  # and plays again: a new run
            run_until(kit, 4.0, triggers)
            assert kit.live()["render_products"] == 2 and kit.live()["attached_annotators"] == 2
            extension.on_shutdown()  # while playing: the run ends, the worker flushes and stops

            assert kit.live() == {"update_subscriptions": 0, "timeline_subscriptions": 0, "trigger_subscriptions": 0,
                                  "render_products": 0, "attached_annotators": 0}
            assert worker_threads() == []
            assert all(rp.destroyed for rp in kit.replicator.created)

            store = gateway.store
            assert [r.split(":")[0] for r in store.runs] == ["start", "end", "start", "end"] * (cycle + 1)
            second_run = store.runs[-1].split(":", 1)[1]
            events = sorted((e for e in store.events.values() if e.run_id == second_run), key=lambda e: e.sequence)
            assert [(e.event_type, e.car_id, e.attributes["detectedBy"]) for e in events] == [
                ("parking.entry", "12GA3456", "trigger"),
                ("parking.exit", "34XY7890", "position"),
            ]
            image = events[0].images[0]
            assert (image.view, image.camera_prim_path, image.width, image.height) == ("entry", CAMERAS[0], 64, 48)
            assert np.asarray(Image.open(io.BytesIO(image.data)))[0, 0, 1] == 200
            assert events[0].coordinates.slot_id == "B-07"
            assert not list((tmp_path / "spool").glob("*.frame"))  # everything acknowledged
            recorded = sorted(p.stem for p in (tmp_path / "recordings").glob("*.simrec"))
            assert recorded == sorted(r.split(":", 1)[1] for r in store.runs if r.startswith("start:"))
            kit.timeline.stop()
            kit.update()
        assert not [level for level, _ in kit.logs if level == "error"]
    finally:
        gateway.close()


def test_a_bad_setting_leaves_the_extension_idle_with_an_error_and_shutdown_still_works(monkeypatch, fresh_modules) -> None:
    kit = Kit(build_parking_lot(), kit_settings(transport="carrier-pigeon"))
    kit.install(monkeypatch)
    (extension_class,) = import_extension_classes(kit)
    extension = extension_class()
    extension.on_startup("simgate.parking-0.1.0")
    assert any("transport" in msg for level, msg in kit.logs if level == "error")
    assert worker_threads() == [] and kit.live()["update_subscriptions"] == 0
    extension.on_shutdown()
    extension.on_shutdown()  # safe twice


def test_enabled_while_playing_starts_a_run_at_once(tmp_path, monkeypatch, fresh_modules) -> None:
    gateway = FakeGrpcGateway().start()
    kit = Kit(build_parking_lot(), kit_settings(gatewayAddress=gateway.address, cameraPrimPaths=list(CAMERAS),
                                                spoolDir=str(tmp_path / "spool")))
    kit.install(monkeypatch)
    try:
        kit.timeline.play()
        kit.update()
        (extension_class,) = import_extension_classes(kit)
        extension = extension_class()
        extension.on_startup("simgate.parking-0.2.0")
        assert kit.live()["render_products"] == 2
        extension.on_shutdown()
        wait_for(lambda: len(gateway.store.runs) == 2)
        assert kit.live()["render_products"] == 0 and worker_threads() == []
    finally:
        gateway.close()
