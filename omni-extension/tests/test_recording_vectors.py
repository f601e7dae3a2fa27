"""Cross-language test vectors: the Python writer must produce test/fixtures/recording/basic.simrec byte
for byte from vectors.json (the TypeScript writer is held to the same file by
test/recording/vectors.test.ts), and the reader must report damage at the exact frame."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from simgate.recording import CorruptFrame, RecordedFrame, RecordingReader, canonical_bytes, encode_recording
from simgate.v1 import simgate_pb2

FIXTURES = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "recording"
VECTORS = json.loads((FIXTURES / "vectors.json").read_text())


def _frames_from_vectors() -> list[simgate_pb2.ClientFrame]:
    return [json_format.ParseDict(f, simgate_pb2.ClientFrame()) for f in VECTORS["frames"]]


def test_python_writer_produces_the_committed_file_byte_for_byte() -> None:
    header = json_format.ParseDict(VECTORS["header"], simgate_pb2.RecordingHeader())
    written = encode_recording(header, _frames_from_vectors())
    expected = (FIXTURES / VECTORS["expectedFile"]).read_bytes()
    assert len(written) == len(expected)
    assert written == expected


def test_reader_returns_the_frames_of_the_committed_file() -> None:
    with RecordingReader.open(FIXTURES / VECTORS["expectedFile"]) as reader:
        assert reader.header.writer == "simgate-test-vectors/1"
        assert reader.header.run.lineage.seed == 2**53 - 1
        assert reader.header.run.lineage.extra["émile"] == "accent"
        items = list(reader.frames())
    assert all(isinstance(i, RecordedFrame) for i in items)
    frames = [i.frame for i in items if isinstance(i, RecordedFrame)]
    assert [f.WhichOneof("body") for f in frames] == ["run_start", "event", "event", "run_end"]
    assert frames[1].event.attributes["Ω"] == "omega"
    assert frames[1].event.images[0].encoding == simgate_pb2.IMAGE_ENCODING_PNG
    assert frames[2].event.capture_time_unix_ms == -1
    assert frames[3].run_end.events_by_type["parking.entry"] == 1
    for got, want in zip(frames, _frames_from_vectors()):
        assert canonical_bytes(got) == canonical_bytes(want)


@pytest.mark.parametrize("damaged", VECTORS["damaged"], ids=lambda d: d["file"])
def test_damage_is_reported_at_its_frame(damaged: dict) -> None:
    with RecordingReader.open(FIXTURES / damaged["file"]) as reader:
        items = list(reader.frames())
    last = items[-1]
    assert isinstance(last, CorruptFrame)
    assert last.error.code == damaged["code"]
    assert last.error.frame_index == damaged["frameIndex"]
    assert sum(isinstance(i, RecordedFrame) for i in items) == damaged["intactFramesBefore"]
    assert f"frame {damaged['frameIndex']}" in last.error.describe()
    if "intactFramesWhenSkipping" in damaged:
        with RecordingReader.open(FIXTURES / damaged["file"]) as reader:
            skipping = list(reader.frames(skip_corrupt=True))
        assert sum(isinstance(i, RecordedFrame) for i in skipping) == damaged["intactFramesWhenSkipping"]
        assert sum(isinstance(i, CorruptFrame) for i in skipping) == 1
