"""The optional run recording: a .simrec per run, written off the simulation thread, readable by
simgate.recording (the format the TypeScript replayer reads)."""

from __future__ import annotations

from parking_lot import CAMERAS, GATES, TCPS, build_parking_lot
from simgate.parking.recorder import RunRecorder
from simgate.parking.session import ParkingSession
from simgate.parking.settings import ParkingSettings
from simgate.parking.stage_reader import StageReader
from simgate.recording import RecordedFrame, RecordingReader


def test_each_run_becomes_a_recording_that_reads_back(tmp_path) -> None:
    recorder = RunRecorder(str(tmp_path / "runs"), "simgate-omni-extension/0.1.0")
    settings = ParkingSettings(gate_prim_paths=GATES, camera_prim_paths=CAMERAS)
    stage = build_parking_lot()
    sent = []

    def sink(message):
        recorder.record(message)
        sent.append(message)
        return True

    for run_id in ("rec-1", "rec-2"):
        session = ParkingSession(settings, StageReader(stage), sink, None, "0.1.0", run_id=run_id)
        session.start()
        for frame in range(int(4 * TCPS)):
            session.on_update(frame / TCPS)
        session.end("completed")
    recorder.close()
    recorder.close()  # twice is fine
    assert not recorder.running and recorder.left_out == 0 and recorder.errors == 0
    assert [p.rsplit("/", 1)[-1] for p in recorder.files] == ["rec-1.simrec", "rec-2.simrec"]

    with RecordingReader.open(recorder.files[0]) as reader:
        assert reader.header.run.run_id == "rec-1" and reader.header.writer == "simgate-omni-extension/0.1.0"
        assert reader.header.run.lineage.source == "omniverse"
        frames = [item.frame for item in reader.frames()]
    assert all(isinstance(item, RecordedFrame) for item in RecordingReader.open(recorder.files[1]).frames())
    kinds = [f.WhichOneof("body") for f in frames]
    assert kinds == ["event", "event", "run_end"]
    assert [f.event.event_type for f in frames[:2]] == ["parking.entry", "parking.exit"]
    assert frames[0].event == sent[1]  # the same message the gateway got


def test_frames_that_cannot_be_recorded_are_counted_not_lost_silently(tmp_path) -> None:
    from simgate.v1 import simgate_pb2

    recorder = RunRecorder(str(tmp_path), "w", capacity=1)
    for n in range(200):
        recorder.record(simgate_pb2.Event(event_id=f"e{n}", run_id="r"))  # no run start: nothing to write into
    recorder.close()
    assert recorder.left_out == 200 and recorder.frames_written == 0 and recorder.files == []
