"""Load the extension the way Kit does, with stand-ins for omni.* that behave as Kit does (kit_standins.py):
the extension id from its folder, the declared python module, the IExt subclass, play / stop / stage close /
hot reload / shutdown. Every test runs against the Kit 107 event API (carb.eventdispatcher) and the Kit 106
event streams. Events flow to a real gRPC server; afterwards nothing may be left subscribed or running."""

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

import kit_standins
from fake_gateway import FakeGrpcGateway
from kit_standins import Kit, extension_id, extension_name_and_tag, import_extension_classes
from parking_lot import CAMERAS, TCPS, build_parking_lot, make_rigid_body, make_trigger

EXT_ROOT = Path(__file__).resolve().parents[1] / "exts" / "simgate.parking"
MANIFEST = tomllib.loads((EXT_ROOT / "config" / "extension.toml").read_text())
EXT_ID = extension_id(EXT_ROOT)  # derived from the folder, as Kit does; never a literal


def kit_settings(**overrides) -> dict:
    """What Kit puts in carb.settings from [settings], then the command line's --/exts/... overrides."""
    values = {f"/exts/simgate.parking/{k}": v for k, v in MANIFEST["settings"]["exts"]["simgate.parking"].items()}
    values.update({f"/exts/simgate.parking/{k}": v for k, v in overrides.items()})
    return values


@pytest.fixture(params=["107", "106"])
def kit_api(request) -> str:
    return request.param


@pytest.fixture()
def fresh_modules():
    """Import simgate.* anew (with the stand-ins present) and put the plain modules back afterwards."""
    saved = {k: v for k, v in sys.modules.items() if k == "simgate" or k.startswith("simgate.")}
    for name in [k for k in saved if k.startswith("simgate.parking")]:
        del sys.modules[name]
    yield
    for name in [k for k in sys.modules if k == "simgate" or k.startswith("simgate.")]:
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.fixture()
def gateway():
    gw = FakeGrpcGateway().start()
    yield gw
    gw.close()


def worker_threads() -> list[threading.Thread]:
    names = ("simgate-gateway-worker", "simgate-run-recorder")
    return [t for t in threading.enumerate() if t.name in names and t.is_alive()]


def run_until(kit: Kit, seconds: float, on_update=None) -> None:
    for _ in range(int(seconds * TCPS)):
        kit.update()
        if on_update is not None:
            on_update(kit)


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    assert condition()


def start_kit(kit_api: str, monkeypatch, stage=None, gpu: bool = False, **settings) -> tuple[Kit, type]:
    kit = Kit(stage if stage is not None else build_parking_lot(physics=True), kit_settings(**settings), api=kit_api,
              gpu=gpu)
    kit.install(monkeypatch)
    (extension_class,) = import_extension_classes(EXT_ROOT)
    return kit, extension_class


def events_of(store, run_id: str):
    return sorted((e for e in store.events.values() if e.run_id == run_id), key=lambda e: e.sequence)


# --- layout and manifest -----------------------------------------------------------------------------------


def test_the_extension_id_comes_from_its_folder_as_kit_reads_it() -> None:
    assert extension_name_and_tag(EXT_ROOT) == ("simgate.parking", "")
    assert EXT_ID == f"simgate.parking-{MANIFEST['package']['version']}"
    # The folder the extension used to be in read as extension "omni", tag "extension": Kit could not find it.
    assert extension_name_and_tag(EXT_ROOT.parents[1]) == ("omni", "extension")
    assert EXT_ROOT.parent.name == "exts"  # the folder to give Kit's --ext-folder


def test_manifest_is_kit_app_template_shaped() -> None:
    package = MANIFEST["package"]
    assert package["version"] and package["readme"] == "docs/README.md"
    for key in ("readme", "changelog", "icon", "preview_image"):
        assert (EXT_ROOT / package[key]).is_file(), key
    assert Image.open(EXT_ROOT / package["icon"]).size[0] >= 64
    assert all((EXT_ROOT / page).is_file() for page in MANIFEST["documentation"]["pages"])
    # Only extensions the solver can resolve: omni.kit.app is the kernel's module, not an extension.
    assert set(MANIFEST["dependencies"]) == {"omni.usd", "omni.timeline", "omni.physx", "omni.replicator.core", "omni.warp.core"}
    assert MANIFEST["dependencies"]["omni.warp.core"] == {"optional": True}  # the host path works without it
    assert MANIFEST["python"]["module"] == [{"name": "simgate.parking"}]
    assert MANIFEST["test"][0]["dependencies"] == ["omni.kit.test"]
    requirements = MANIFEST["python"]["pipapi"]["requirements"]
    assert all(">=" in r and "<" in r for r in requirements), requirements  # ranges a Kit app can satisfy
    from simgate.parking.settings import ParkingSettings, setting_keys

    assert sorted(MANIFEST["settings"]["exts"]["simgate.parking"]) == sorted(setting_keys())
    ParkingSettings.from_mapping(MANIFEST["settings"]["exts"]["simgate.parking"])  # the defaults are valid


def test_pipapi_ranges_admit_the_versions_the_project_pins() -> None:
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((EXT_ROOT.parents[1] / "pyproject.toml").read_text())
    pins = {Requirement(r).name: next(iter(Requirement(r).specifier)).version for r in pyproject["project"]["dependencies"]}
    for text in MANIFEST["python"]["pipapi"]["requirements"]:
        requirement = Requirement(text)
        assert requirement.specifier.contains(pins[requirement.name]), (text, pins[requirement.name])
    # ... and admit nothing older than what the generated code checks for at import
    import re

    generated = EXT_ROOT / "simgate" / "v1"
    needs = {
        "protobuf": re.search(r"Protobuf Python Version: ([0-9.]+)", (generated / "simgate_pb2.py").read_text()).group(1),
        "grpcio": re.search(r"GRPC_GENERATED_VERSION = '([0-9.]+)'", (generated / "simgate_pb2_grpc.py").read_text()).group(1),
    }
    for text in MANIFEST["python"]["pipapi"]["requirements"]:
        requirement = Requirement(text)
        if requirement.name in needs:
            lowest = next(s.version for s in requirement.specifier if s.operator == ">=")
            assert tuple(map(int, lowest.split("."))) >= tuple(map(int, needs[requirement.name].split("."))), text


# --- whole runs, both event APIs ----------------------------------------------------------------------------


def test_loaded_like_kit_twice_runs_recovers_across_stop_play_and_releases_everything(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    kit, extension_class = start_kit(
        kit_api, monkeypatch, gatewayAddress=gateway.address, cameraPrimPaths=list(CAMERAS),
        spoolDir=str(tmp_path / "spool"), imageWidth=64, imageHeight=48, debounceSeconds=0.5,
        shutdownFlushMs=1000, recordingDir=str(tmp_path / "recordings"),
    )
    released = {"update_subscriptions": 0, "timeline_subscriptions": 0, "stage_subscriptions": 0,
                "trigger_subscriptions": 0, "render_products": 0, "attached_annotators": 0}
    for cycle in range(2):
        extension = extension_class()
        extension.on_startup(EXT_ID)
        assert extension.event_api == ("carb.eventdispatcher" if kit_api == "107" else "event streams")
        wait_for(lambda: len(worker_threads()) == 2)  # the network worker and the recorder
        assert kit.live() == {**released, "update_subscriptions": 1, "timeline_subscriptions": 2 if kit_api == "107" else 1,
                              "stage_subscriptions": 1}

        kit.timeline.play()
        assert kit.live()["render_products"] == 0  # play() takes effect on the next update
        run_until(kit, 0.5)
        assert kit.live()["render_products"] == 2 and kit.live()["trigger_subscriptions"] == 1
        kit.timeline.stop()  # the user stops early: run 1 ends, cameras and triggers are released
        kit.update()
        assert kit.live()["render_products"] == 0 and kit.live()["trigger_subscriptions"] == 0

        event_updates: dict[int, int] = {}
        kit.timeline.play()  # and plays again: a new run. Car1 is a rigid body: PhysX reports its passage
        run_until(kit, 4.0, lambda k: event_updates.setdefault(len(gateway.store.events), k.updates))
        assert kit.live()["render_products"] == 2 and kit.live()["attached_annotators"] == 2
        extension.on_shutdown()  # while playing: the run ends, the worker flushes and stops
        wait_for(lambda: worker_threads() == [])

        assert kit.live() == released
        assert all(rp.destroyed for rp in kit.replicator.created)
        store = gateway.store
        assert [r.split(":")[0] for r in store.runs] == ["start", "end", "start", "end"] * (cycle + 1)
        second_run = store.runs[-1].split(":", 1)[1]
        events = events_of(store, second_run)
        assert [(e.event_type, e.car_id, e.attributes["detectedBy"]) for e in events] == [
            ("parking.entry", "12GA3456", "trigger"),
            ("parking.exit", "34XY7890", "position"),
        ]
        image = events[0].images[0]
        assert (image.view, image.camera_prim_path, image.width, image.height) == ("entry", CAMERAS[0], 64, 48)
        pixels = np.asarray(Image.open(io.BytesIO(image.data)))
        assert pixels[0, 0, 1] == 200
        assert events[0].coordinates.slot_id == "B-07"
        assert not list((tmp_path / "spool").glob("*.frame"))  # everything acknowledged
        recorded = sorted(p.stem for p in (tmp_path / "recordings").glob("*.simrec"))
        assert recorded == sorted(r.split(":", 1)[1] for r in store.runs if r.startswith("start:"))
        assert kit.physx.reports >= 2
        kit.timeline.stop()
        kit.update()
    assert not [level for level, _ in kit.logs if level == "error"]
    assert kit.legacy_api_used == set()  # Kit 107: only carb.eventdispatcher (the legacy streams are deprecated)


def test_the_picture_is_the_annotators_latest_finished_frame_never_newer_than_the_crossing(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress=gateway.address, imageWidth=32, imageHeight=32,
                                     imageEncoding="raw", spoolDir=str(tmp_path / "spool"))
    kit.annotator_lag, kit.skip_every = 3, 2  # a slow renderer that often has no new frame
    extension = extension_class()
    extension.on_startup(EXT_ID)
    sent_at: dict[str, int] = {}
    kit.timeline.play()

    def note(k: Kit) -> None:
        for key in list(extension.worker.outbox._items):  # what the update put in, with the update number
            sent_at.setdefault(key.key, k.updates)

    run_until(kit, 4.0, note)
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])
    events = list(gateway.store.events.values())
    assert len(events) == 2
    for event in events:
        image = event.images[0]
        rendered_in = image.data[0]  # the stand-in writes the update number into the first pixel
        assert rendered_in <= (sent_at.get(event.event_id, 10**6) - kit.annotator_lag) % 256


def test_the_annotators_buffer_is_copied_in_the_update_and_what_the_worker_gets_never_changes_afterwards(
    tmp_path, monkeypatch, fresh_modules, kit_api
) -> None:
    """Replicator hands over a view of a buffer that its next finished frame overwrites: the extension asks for
    views (no new array per get_data) and copies each at once, so the picture the worker gets later is still the
    frame of the update it was taken in."""
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress="127.0.0.1:9", imageWidth=32,
                                     imageHeight=32, spoolDir=str(tmp_path / "spool"))
    kit.annotator_lag, kit.skip_every = 1, 0
    extension = extension_class()
    extension.on_startup(EXT_ID)
    handed_over: list = []  # (picture array, its first byte when it was handed over, update)
    submit = extension.worker.submit

    def watch(message) -> bool:
        for picture in getattr(message, "pictures", ()):
            handed_over.append((picture.pixels, int(picture.pixels[0, 0, 0]), kit.updates))
        return submit(message)

    monkeypatch.setattr(extension.worker, "submit", watch)
    kit.timeline.play()
    run_until(kit, 4.0)
    annotators = [a for a in kit.replicator.annotators if a.render_products]
    assert len(annotators) == 2 and all(a.do_array_copy is False and a.copies == 0 for a in annotators)
    assert len(handed_over) == 2
    for pixels, first_byte, update in handed_over:
        assert first_byte == (update - kit.annotator_lag) % 256  # the newest finished frame when it was taken
        assert pixels[0, 0, 0] == first_byte  # unchanged though the renderer finished many frames since
        assert all(pixels.ctypes.data != a.get_data().ctypes.data for a in annotators)  # not Replicator's buffer
    pool = extension._frame_pool
    assert pool.allocated == 0  # the buffers were made at play, none during the updates
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])


def test_with_a_gpu_the_frame_is_copied_on_the_device_and_reaches_host_memory_only_on_the_worker(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    """Kit on an RTX machine: the annotator's data stays on the GPU. The update takes a device-side copy of
    the finished frame (wp.clone on the extension's stream, waited for: the renderer rewrites its buffer in
    place), and the device-to-host copy happens on the worker. The main thread touches no pixel, the
    pictures are the frames of the updates they were taken in, and no host frame buffers are made."""
    kit, extension_class = start_kit(kit_api, monkeypatch, gpu=True, gatewayAddress=gateway.address, imageWidth=32,
                                     imageHeight=32, imageEncoding="raw", spoolDir=str(tmp_path / "spool"))
    kit.annotator_lag, kit.skip_every = 1, 0
    kit.replicator.cuda_device = "cuda:1"  # a second GPU renders: the copy's stream must be on that device
    extension = extension_class()
    extension.on_startup(EXT_ID)
    taken: dict[str, int] = {}  # event id -> the frame number its picture had when the update handed it over
    submit = extension.worker.submit

    def watch(message) -> bool:
        for picture in getattr(message, "pictures", ()):
            taken[message.event.event_id] = picture.pixels.frame % 256
        return submit(message)

    monkeypatch.setattr(extension.worker, "submit", watch)
    kit.timeline.play()
    run_until(kit, 4.0)
    annotators = [a for a in kit.replicator.annotators if a.render_products]
    assert len(annotators) == 2 and all(a.device == "cuda" and a.do_array_copy is False for a in annotators)
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])
    events = list(gateway.store.events.values())
    assert len(events) == 2 and set(taken) == {e.event_id for e in events}
    for event in events:
        assert event.images[0].data[0] == taken[event.event_id]  # the frame of its update, not a later one
    assert kit.replicator.device_clones == 2
    main = threading.main_thread().ident
    assert kit.replicator.host_copy_threads and main not in kit.replicator.host_copy_threads
    assert extension._frame_pool is None  # no host buffers: nothing is copied on the main thread


@pytest.mark.parametrize(
    ("gpu", "setting", "device", "warned"),
    [(True, "auto", "cuda", False), (False, "auto", "cpu", False), (True, "cpu", "cpu", False), (False, "cuda", "cpu", True)],
)
def test_the_capture_device_is_the_gpu_where_warp_finds_one_unless_set_to_cpu(
    tmp_path, monkeypatch, fresh_modules, gpu, setting, device, warned
) -> None:
    kit, extension_class = start_kit("107", monkeypatch, gpu=gpu, gatewayAddress="127.0.0.1:9", imageWidth=32,
                                     imageHeight=32, captureDevice=setting, spoolDir=str(tmp_path / "spool"))
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    kit.update()
    annotators = [a for a in kit.replicator.annotators if a.render_products]
    assert len(annotators) == 2 and {a.device for a in annotators} == {device}
    warnings = [m for level, m in kit.logs if level == "warn" and "captureDevice" in m]
    assert len(warnings) == (1 if warned else 0)
    assert (extension._frame_pool is not None) == (device == "cpu")
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])


def test_no_frame_yet_keeps_the_event_and_says_why(tmp_path, monkeypatch, fresh_modules, gateway, kit_api) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress=gateway.address, imageWidth=32, imageHeight=32,
                                     spoolDir=str(tmp_path / "spool"))
    kit.annotator_lag = 10**6  # the renderer never finishes a frame
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    run_until(kit, 4.0)
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])
    events = list(gateway.store.events.values())
    assert len(events) == 2 and all(not e.images and e.attributes["imageError"] == "no frame rendered yet" for e in events)


def test_a_bad_setting_leaves_the_extension_idle_with_an_error_and_shutdown_still_works(
    monkeypatch, fresh_modules, kit_api
) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, transport="carrier-pigeon")
    extension = extension_class()
    extension.on_startup(EXT_ID)
    assert any("transport" in msg for level, msg in kit.logs if level == "error")
    assert worker_threads() == [] and kit.live()["update_subscriptions"] == 0
    extension.on_shutdown()
    extension.on_shutdown()  # safe twice


def test_a_token_for_an_insecure_remote_gateway_is_refused_with_a_clear_message(monkeypatch, fresh_modules, kit_api) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, token="secret-token", gatewayAddress="gateway.example:50051")
    extension = extension_class()
    extension.on_startup(EXT_ID)
    errors = [msg for level, msg in kit.logs if level == "error"]
    assert any("refusing to send the token in clear text to gateway.example:50051" in m and "tls = true" in m for m in errors)
    assert worker_threads() == [] and kit.live()["update_subscriptions"] == 0
    extension.on_shutdown()


def test_enabled_while_playing_starts_a_run_at_once(tmp_path, monkeypatch, fresh_modules, gateway, kit_api) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress=gateway.address, cameraPrimPaths=list(CAMERAS),
                                     spoolDir=str(tmp_path / "spool"))
    kit.timeline.play()
    kit.update()
    extension = extension_class()
    extension.on_startup(EXT_ID)
    assert kit.live()["render_products"] == 2
    extension.on_shutdown()  # at once: at most 1 s to deliver, the rest stays in the spool
    assert kit.live()["render_products"] == 0
    wait_for(lambda: worker_threads() == [])
    kit.timeline.stop()
    kit.update()
    again = extension_class()  # the next start sends what the spool kept
    again.on_startup(EXT_ID)
    wait_for(lambda: len(gateway.store.runs) == 2)
    assert [r.split(":")[0] for r in gateway.store.runs] == ["start", "end"]
    again.on_shutdown()
    wait_for(lambda: worker_threads() == [])


# --- Kit's behaviour that matters ------------------------------------------------------------------------------


def test_on_play_every_gate_is_checked_a_bad_one_is_named_and_polled(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    stage = build_parking_lot()  # no physics set-up ...
    make_trigger(stage.GetPrimAtPath("/World/Gates/Entry"))  # ... except the entry gate
    make_rigid_body(stage.GetPrimAtPath("/World/Cars/Car2"))  # Car2 is a rigid body, but the exit is no trigger
    kit, extension_class = start_kit(kit_api, monkeypatch, stage, gatewayAddress=gateway.address,
                                     spoolDir=str(tmp_path / "spool"), detection="trigger")
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    run_until(kit, 4.0)
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])
    warnings = [msg for level, msg in kit.logs if level == "warn" and "cannot report PhysX triggers" in msg]
    assert len(warnings) == 1 and "/World/Gates/Exit" in warnings[0]
    assert "no UsdPhysics.CollisionAPI" in warnings[0] and "no PhysxSchema.PhysxTriggerAPI" in warnings[0]
    events = list(gateway.store.events.values())
    # the exit gate is polled (fallback); Car1 is no rigid body, so in "trigger" mode its entry is not seen
    assert [(e.event_type, e.car_id, e.attributes["detectedBy"]) for e in events] == [("parking.exit", "34XY7890", "position")]


def test_closing_the_stage_while_playing_ends_the_run_and_keeps_nothing_of_it(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress=gateway.address, cameraPrimPaths=list(CAMERAS),
                                     spoolDir=str(tmp_path / "spool"))
    old_stage = kit.stage
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    run_until(kit, 0.5)
    assert kit.live()["render_products"] == 2 and kit.live()["trigger_subscriptions"] == 1
    kit.close_stage()
    run_until(kit, 0.5)  # still playing, no stage: nothing happens, nothing fails
    assert kit.live()["render_products"] == 0 and kit.live()["trigger_subscriptions"] == 0
    assert kit.live()["attached_annotators"] == 0
    assert not any(value is old_stage for value in vars(extension).values())
    assert extension._session is None
    wait_for(lambda: len(gateway.store.run_ends) == 1)
    (run_end,) = gateway.store.run_ends.values()
    assert run_end.reason == "stage closing"
    kit.timeline.stop()
    kit.update()
    kit.usd.open_stage(build_parking_lot(physics=True))  # a new stage, a new run
    kit.timeline.play()
    run_until(kit, 4.0)
    extension.on_shutdown()
    wait_for(lambda: len(gateway.store.run_ends) == 2)
    assert len(gateway.store.events) == 2 and kit.live()["render_products"] == 0
    assert not [msg for level, msg in kit.logs if level == "error"]


def test_on_shutdown_survives_a_failing_release_and_stops_the_worker(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress=gateway.address, cameraPrimPaths=list(CAMERAS),
                                     spoolDir=str(tmp_path / "spool"))
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    run_until(kit, 0.5)
    for annotator in kit.replicator.annotators:
        annotator.fail_detach = True
    started = time.monotonic()
    extension.on_shutdown()
    assert time.monotonic() - started < 2.5
    errors = [msg for level, msg in kit.logs if level == "error"]
    assert sum("could not detach the annotator" in m for m in errors) == 2
    assert kit.live()["render_products"] == 0  # destroyed all the same
    assert kit.live()["update_subscriptions"] == 0 and kit.live()["trigger_subscriptions"] == 0
    wait_for(lambda: worker_threads() == [])
    # The worker had at most the 1 s of on_shutdown: the run's end reached the gateway or waits in the spool
    # for the next start (on a loaded machine the low-priority worker may not get the CPU within that second).
    wait_for(lambda: len(gateway.store.run_ends) == 1 or any((tmp_path / "spool").glob("*.frame")))


def test_hot_reload_while_playing_never_leaves_two_workers_nor_shares_the_spool(
    tmp_path, monkeypatch, fresh_modules, kit_api
) -> None:
    # The gateway is away: everything goes to the spool, so the spool's owner matters.
    kit, extension_class = start_kit(kit_api, monkeypatch, gatewayAddress="127.0.0.1:9", cameraPrimPaths=list(CAMERAS),
                                     spoolDir=str(tmp_path / "spool"), imageWidth=32, imageHeight=32,
                                     reconnectInitialMs=20, reconnectMaxMs=50)
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    run_until(kit, 1.5)
    instances = [extension]
    stopped = []  # the workers of earlier instances (they may still be finishing their spool writes)
    pb2_modules = {id(sys.modules["simgate.v1.simgate_pb2"])}
    most_active = []
    for _ in range(2):  # Kit's hot reload: shutdown, unload the extension's modules, import again, start
        stopped.append(extension.worker)
        extension.on_shutdown()
        for name in [k for k in sys.modules if k == "simgate" or k.startswith("simgate.")]:
            del sys.modules[name]
        (extension_class,) = import_extension_classes(EXT_ROOT)
        pb2_modules.add(id(sys.modules["simgate.v1.simgate_pb2"]))
        extension = extension_class()
        extension.on_startup(EXT_ID)
        instances.append(extension)
        for _ in range(12):
            kit.update()
            most_active.append(sum(1 for e in instances if e._worker is not None and e._worker.active)
                               + sum(1 for e in stopped if e.active))
    run_until(kit, 3.0)
    assert len(pb2_modules) == 3  # imported three times, without a descriptor pool conflict
    assert max(most_active) <= 1
    assert sum(1 for t in worker_threads() if t.name == "simgate-gateway-worker") == 1
    assert instances[-1].worker.active and not [e for e in instances[:-1] if e.worker is not None]
    assert not any(w.active for w in stopped)
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])
    from simgate.v1 import simgate_pb2

    frames = [simgate_pb2.ClientFrame.FromString(f.read_bytes()) for f in sorted((tmp_path / "spool").glob("*.frame"))]
    kinds = [f.WhichOneof("body") for f in frames]
    assert kinds.count("run_start") == 3 and kinds.count("run_end") == 3  # every run of every instance kept
    assert not [msg for level, msg in kit.logs if level == "error"]


def test_physics_driven_cars_are_read_from_physx_when_usd_is_not_updated(
    tmp_path, monkeypatch, fresh_modules, gateway, kit_api
) -> None:
    from pxr import Gf, UsdGeom

    stage = build_parking_lot(physics=True)
    car = UsdGeom.Xform.Define(stage, "/World/Cars/Car4")
    car.GetPrim().CreateAttribute("simgate:carId", __import__("pxr").Sdf.ValueTypeNames.String).Set("55PH0001")
    car.AddTranslateOp().Set(Gf.Vec3d(-500, 300, 50))  # USD: parked on the street, never updated
    car.AddRotateZOp().Set(0.0)
    UsdGeom.Cube.Define(stage, "/World/Cars/Car4/Body")
    make_rigid_body(car.GetPrim(), kinematic=False)
    kit, extension_class = start_kit(kit_api, monkeypatch, stage, gatewayAddress=gateway.address,
                                     spoolDir=str(tmp_path / "spool"), imageWidth=32, imageHeight=32,
                                     gatePrimPaths=["/World/Gates/Entry"], cameraPrimPaths=[CAMERAS[0]])
    kit.settings.set("/physics/updateToUsd", False)
    # PhysX drives Car4 from the street through the entry gate to x = 800 over 3 s, turning to yaw 30.
    kit.physx.drive("/World/Cars/Car4", lambda t: ((-500 + min(t, 3.0) * 1300 / 3, 0.0, 50.0), 30.0 * min(t, 3.0) / 3))
    extension = extension_class()
    extension.on_startup(EXT_ID)
    kit.timeline.play()
    run_until(kit, 4.0)
    extension.on_shutdown()
    wait_for(lambda: worker_threads() == [])
    (event,) = [e for e in gateway.store.events.values() if e.car_id == "55PH0001"]
    assert event.event_type == "parking.entry" and event.attributes["detectedBy"] == "trigger"
    x_cm = -500 + event.sim_time_seconds * 1300 / 3
    assert event.coordinates.x == pytest.approx(x_cm / 100, abs=0.01) and event.coordinates.x > 0.5
    assert event.coordinates.y == pytest.approx(0.0) and event.coordinates.yaw_deg > 0
    usd_x = UsdGeom.Xformable(stage.GetPrimAtPath("/World/Cars/Car4")).ComputeLocalToWorldTransform(0).ExtractTranslation()[0]
    assert usd_x == -500  # the stale USD pose was not used


def test_the_pb2_import_survives_hot_reloads_and_a_changed_contract(monkeypatch, fresh_modules) -> None:
    from simgate.parking import wire

    for _ in range(2):  # Kit unloads the extension's modules, simgate.v1 included, and imports them again
        for name in [k for k in sys.modules if k.startswith("simgate.v1") or k.startswith("simgate.parking")]:
            del sys.modules[name]
        module = importlib.import_module("simgate.parking.wire").simgate_pb2
        assert module.Event(event_id="x").SerializeToString()
    # A regenerated proto whose build differs: protobuf refuses to register it again; the pool's is reused.
    del sys.modules["simgate.v1.simgate_pb2"]

    def refuse(name, *a, **k):
        raise TypeError("Couldn't build proto file into descriptor pool: duplicate file name simgate/v1/simgate.proto")

    monkeypatch.setattr(wire.importlib, "import_module", refuse)
    rebuilt = wire.load_pb2()
    event = rebuilt.Event(event_id="e-1", images=[rebuilt.Image(encoding=rebuilt.IMAGE_ENCODING_PNG, data=b"x")])
    assert rebuilt.ClientFrame(event=event).event.images[0].encoding == rebuilt.IMAGE_ENCODING_PNG
    assert sys.modules["simgate.v1.simgate_pb2"] is rebuilt


def test_the_standins_keep_the_api_versions_apart(monkeypatch, fresh_modules) -> None:
    kit106 = Kit(build_parking_lot(), {}, api="106")
    kit106.install(monkeypatch)
    with pytest.raises(ImportError):
        import carb.eventdispatcher  # noqa: F401
    assert not hasattr(sys.modules["omni.kit.app"], "GLOBAL_EVENT_UPDATE")
    assert not hasattr(sys.modules["omni.usd"].get_context(), "stage_event_name")
    assert kit_standins.GLOBAL_EVENT_UPDATE


def test_only_the_adapter_imports_omni_or_carb() -> None:
    import ast

    package = EXT_ROOT / "simgate"
    offenders = []
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        # __init__.py only probes whether omni.ext exists, to decide whether to load the adapter
        if relative in ("parking/extension.py", "parking/__init__.py", "parking/tests/test_kit_extension.py",
                        "parking/tests/__init__.py") \
                or relative.startswith("v1/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{relative}: {n}" for n in names if n.split(".")[0] in ("omni", "carb")]
    assert offenders == []
