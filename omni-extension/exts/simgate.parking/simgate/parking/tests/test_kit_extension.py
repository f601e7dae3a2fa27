"""Tests that run inside Kit with omni.kit.test (Kit 106.x): the real timeline, USD context, PhysX and
Replicator. Run them as docs/README.md says; the [[test]] section of config/extension.toml points the
extension at a closed port (127.0.0.1:9) and a temporary spool, so the events end up in the spool."""

from __future__ import annotations

import glob
import os

import carb.settings
import carb.tokens
import omni.kit.app
import omni.kit.test
import omni.timeline
import omni.usd

from simgate.parking.gates import GateDetector, GateVolume
from simgate.parking.settings import SETTINGS_ROOT
from simgate.v1 import simgate_pb2

from .parking_lot import populate_parking_lot


class TestParkingExtensionInKit(omni.kit.test.AsyncTestCase):
    async def setUp(self) -> None:
        await omni.usd.get_context().new_stage_async()
        populate_parking_lot(omni.usd.get_context().get_stage())  # cameras at the default cameraPrimPaths
        self._timeline = omni.timeline.get_timeline_interface()
        self._app = omni.kit.app.get_app()

    async def tearDown(self) -> None:
        self._timeline.stop()
        await self._app.next_update_async()

    async def test_the_extension_is_enabled(self) -> None:
        manager = self._app.get_extension_manager()
        self.assertTrue(manager.is_extension_enabled("simgate.parking"))

    async def test_the_gate_logic_imports_by_its_public_path(self) -> None:
        gate = GateVolume("/World/Gates/Entry", (-1, -1, 0), (1, 1, 2), (1, 0, 0))
        detector = GateDetector([gate])
        out = []
        for i, x in enumerate((-3, 0, 3)):
            out += detector.on_positions([("/World/Cars/A", (x, 0, 1))], i * 0.1)
        self.assertEqual([c.event_type for c in out], ["parking.entry"])

    async def test_playing_the_animated_lot_produces_run_start_and_gate_events(self) -> None:
        # The extension picks the run up on PLAY; the gateway is unreachable in this test configuration,
        # so every frame lands in the spool, where we read it back.
        spool_dir = carb.tokens.get_tokens_interface().resolve(carb.settings.get_settings().get(f"{SETTINGS_ROOT}/spoolDir"))
        before = set(glob.glob(os.path.join(spool_dir, "*.frame")))
        self._timeline.play()
        for _ in range(200):  # ~4 s of animation at 24 fps when every frame is played
            await self._app.next_update_async()
            if self._timeline.get_current_time() > 4.0:
                break
        self._timeline.stop()
        for _ in range(60):
            await self._app.next_update_async()
        frames = []
        for path in sorted(set(glob.glob(os.path.join(spool_dir, "*.frame"))) - before):
            with open(path, "rb") as fh:
                frames.append(simgate_pb2.ClientFrame.FromString(fh.read()))
        kinds = [f.WhichOneof("body") for f in frames]
        self.assertIn("run_start", kinds)
        events = [f.event for f in frames if f.WhichOneof("body") == "event"]
        self.assertEqual(sorted(e.event_type for e in events), ["parking.entry", "parking.exit"])
