"""Tests that run inside Kit with omni.kit.test (Kit 106.5 and 107): the real extension manager, timeline, USD
context, PhysX and Replicator. Run them as docs/README.md says; the [[test]] section of
config/extension.toml points the extension at a closed port (127.0.0.1:9) and a temporary spool, so the
events end up in the spool, where these tests read them back. They mirror the tests run outside Kit with
stand-ins (omni-extension/tests/test_kit_loading.py)."""

from __future__ import annotations

import glob
import importlib
import os
import threading

import carb.settings
import carb.tokens
import omni.kit.app
import omni.kit.test
import omni.timeline
import omni.usd

from simgate.parking.gates import GateDetector, GateVolume
from simgate.parking.settings import SETTINGS_ROOT
from simgate.parking.wire import simgate_pb2

from .parking_lot import populate_parking_lot

EXT_NAME = "simgate.parking"


def _extension():
    return importlib.import_module("simgate.parking.extension").current()


def _spool_dir() -> str:
    return carb.tokens.get_tokens_interface().resolve(carb.settings.get_settings().get(f"{SETTINGS_ROOT}/spoolDir"))


def _frames(before: set[str]) -> list:
    frames = []
    for path in sorted(set(glob.glob(os.path.join(_spool_dir(), "*.frame"))) - before):
        with open(path, "rb") as fh:
            frames.append(simgate_pb2.ClientFrame.FromString(fh.read()))
    return frames


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "simgate-gateway-worker" and t.is_alive()]


class TestParkingExtensionInKit(omni.kit.test.AsyncTestCase):
    async def setUp(self) -> None:
        self._app = omni.kit.app.get_app()
        await omni.usd.get_context().new_stage_async()
        populate_parking_lot(omni.usd.get_context().get_stage(), physics=True)  # cameras at the default paths
        self._timeline = omni.timeline.get_timeline_interface()

    async def tearDown(self) -> None:
        self._timeline.stop()
        await self._app.next_update_async()

    async def _play(self, seconds: float) -> None:
        self._timeline.play()
        for _ in range(int(seconds * 60) + 20):
            await self._app.next_update_async()
            if self._timeline.get_current_time() > seconds:
                break

    async def test_the_extension_is_enabled_under_the_id_its_folder_gives(self) -> None:
        manager = self._app.get_extension_manager()
        self.assertTrue(manager.is_extension_enabled(EXT_NAME))
        ext_id = manager.get_enabled_extension_id(EXT_NAME)
        folder = os.path.basename(os.path.normpath(manager.get_extension_path(ext_id)))
        self.assertEqual(folder.partition("-")[0], EXT_NAME)
        self.assertIsNotNone(_extension())

    async def test_it_uses_the_event_api_this_kit_has(self) -> None:
        try:
            import carb.eventdispatcher  # noqa: F401

            expected = "carb.eventdispatcher" if hasattr(omni.kit.app, "GLOBAL_EVENT_UPDATE") else "event streams"
        except ImportError:
            expected = "event streams"
        self.assertEqual(_extension().event_api, expected)

    async def test_the_gate_logic_imports_by_its_public_path(self) -> None:
        gate = GateVolume("/World/Gates/Entry", (-1, -1, 0), (1, 1, 2), (1, 0, 0))
        detector = GateDetector([gate])
        out = []
        for i, x in enumerate((-3, 0, 3)):
            out += detector.on_positions([("/World/Cars/A", (x, 0, 1))], i * 0.1)
        self.assertEqual([c.event_type for c in out], ["parking.entry"])

    async def test_playing_the_lot_produces_run_start_gate_events_and_run_end(self) -> None:
        before = set(glob.glob(os.path.join(_spool_dir(), "*.frame")))
        await self._play(4.0)
        self._timeline.stop()
        for _ in range(60):
            await self._app.next_update_async()
        frames = _frames(before)
        kinds = [f.WhichOneof("body") for f in frames]
        self.assertIn("run_start", kinds)
        self.assertIn("run_end", kinds)
        events = [f.event for f in frames if f.WhichOneof("body") == "event"]
        self.assertEqual(sorted(e.event_type for e in events), ["parking.entry", "parking.exit"])
        by_type = {e.event_type: e.attributes["detectedBy"] for e in events}
        self.assertEqual(by_type["parking.entry"], "trigger")  # Car1 is a rigid body at a trigger gate

    async def test_the_annotator_hands_over_its_buffer_and_the_picture_is_a_copy_of_our_own(self) -> None:
        """What the main-thread design relies on, checked against this Kit's Replicator: an annotator made with
        do_array_copy=False returns views of one buffer (no new array per get_data), and the extension's picture
        is a copy that does not share that memory."""
        import numpy as np

        await self._play(1.0)
        extension = _extension()
        self.assertTrue(extension._captures)
        for camera, (_rp, annotator) in extension._captures.items():
            if not extension._views.get(camera):
                continue  # this Replicator has no do_array_copy argument: get_data copies
            first, second = annotator.get_data(), annotator.get_data()
            if getattr(first, "size", 0) == 0:
                continue  # no frame finished yet
            if extension._warp is not None:  # on the GPU: device views of one buffer, and a device copy
                self.assertEqual(first.ptr, second.ptr)
                picture = extension._latest_frame(camera)
                self.assertNotEqual(picture.ptr, first.ptr)
                self.assertTrue(np.array_equal(picture.numpy(), first.numpy()))
                continue
            self.assertTrue(np.shares_memory(first, second))
            picture = extension._latest_frame(camera)
            self.assertFalse(np.shares_memory(picture, first))
            self.assertTrue(np.array_equal(picture, first))
        self._timeline.stop()
        await self._app.next_update_async()

    async def test_on_an_rtx_machine_frames_are_copied_on_the_gpu(self) -> None:
        """captureDevice auto: Warp finds this machine's CUDA device, so the update copies frames on the GPU."""
        try:
            import warp

            cuda = warp.is_cuda_available()
        except ImportError:
            cuda = False
        await self._play(0.5)
        extension = _extension()
        self.assertEqual(extension._warp is not None, cuda)
        self.assertEqual(extension._frame_pool is None, cuda)
        self._timeline.stop()
        await self._app.next_update_async()

    async def test_closing_the_stage_while_playing_ends_the_run(self) -> None:
        before = set(glob.glob(os.path.join(_spool_dir(), "*.frame")))
        await self._play(0.5)
        await omni.usd.get_context().close_stage_async()
        for _ in range(60):
            await self._app.next_update_async()
        ends = [f.run_end for f in _frames(before) if f.WhichOneof("body") == "run_end"]
        self.assertEqual([e.reason for e in ends], ["stage closing"])
        extension = _extension()
        self.assertIsNone(extension._session)
        self.assertEqual(extension._captures, {})
        self.assertIsNone(extension._trigger_sub_id)

    async def test_shutdown_survives_a_failing_release(self) -> None:
        await self._play(0.5)
        extension = _extension()

        class Failing:
            def __init__(self, inner):
                self._inner = inner

            def detach(self):
                self._inner.detach()
                raise RuntimeError("detach failed (test)")

            def get_data(self):
                return self._inner.get_data()

        extension._captures = {k: (rp, Failing(a)) for k, (rp, a) in extension._captures.items()}
        manager = self._app.get_extension_manager()
        manager.set_extension_enabled_immediate(EXT_NAME, False)
        for _ in range(90):  # the worker ends within about a second
            await self._app.next_update_async()
        self.assertEqual(_workers(), [])
        manager.set_extension_enabled_immediate(EXT_NAME, True)
        await self._app.next_update_async()

    async def test_disable_and_enable_while_playing_never_leaves_two_workers(self) -> None:
        await self._play(0.5)
        manager = self._app.get_extension_manager()
        for _ in range(2):
            manager.set_extension_enabled_immediate(EXT_NAME, False)
            manager.set_extension_enabled_immediate(EXT_NAME, True)
            for _ in range(30):
                await self._app.next_update_async()
                self.assertLessEqual(len([t for t in _workers()]), 2)
        for _ in range(120):
            await self._app.next_update_async()
        self.assertEqual(len(_workers()), 1)
        self.assertTrue(_extension().worker.active)
