"""The Python recording writer and reader: create, append (also while reading), torn tails, bad files."""
from __future__ import annotations

from pathlib import Path

import pytest

from simgate.recording import (
    CorruptFrame,
    RecordedFrame,
    RecordingError,
    RecordingReader,
    RecordingWriter,
    encode_recording,
)
from simgate.v1 import simgate_pb2


def _header() -> simgate_pb2.RecordingHeader:
    header = simgate_pb2.RecordingHeader(created_unix_ms=1_767_254_400_000, writer="unit-test/1")
    header.run.run_id = "unit-run"
    return header


def _event(sequence: int) -> simgate_pb2.ClientFrame:
    frame = simgate_pb2.ClientFrame()
    ev = frame.event
    ev.event_id = f"unit-run-{sequence}"
    ev.run_id = "unit-run"
    ev.sequence = sequence
    ev.event_type = "parking.entry"
    ev.sim_time_seconds = sequence * 1.5
    ev.car_id = f"CAR{sequence}"
    image = ev.images.add(view="entry", encoding=simgate_pb2.IMAGE_ENCODING_PNG, width=4, height=4)
    image.data = bytes([sequence]) * (1000 + sequence)
    return frame


def _sequences(path: Path, skip_corrupt: bool = False) -> list[object]:
    with RecordingReader.open(path) as reader:
        return [
            i.frame.event.sequence if isinstance(i, RecordedFrame) else i.error.code
            for i in reader.frames(skip_corrupt=skip_corrupt)
        ]


def test_writer_output_equals_encode_recording_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "a.simrec"
    with RecordingWriter.create(path, _header()) as writer:
        assert [writer.append(_event(i)) for i in (1, 2, 3)] == [0, 1, 2]
    assert path.read_bytes() == encode_recording(_header(), [_event(i) for i in (1, 2, 3)])
    assert _sequences(path) == [1, 2, 3]


def test_create_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "b.simrec"
    RecordingWriter.create(path, _header()).close()
    with pytest.raises(FileExistsError):
        RecordingWriter.create(path, _header())
    RecordingWriter.create(path, _header(), overwrite=True).close()


def test_append_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "c.simrec"
    with RecordingWriter.create(path, _header()) as writer:
        writer.append(_event(1))
    writer, header = RecordingWriter.open_for_append(path)
    assert header.run.run_id == "unit-run"
    seen = []
    with RecordingReader.open(path) as reader:
        for item in reader.frames():
            assert isinstance(item, RecordedFrame)
            seen.append(item.frame.event.sequence)
            if len(seen) == 1:
                writer.append(_event(2))
                writer.flush()
    writer.close()
    assert seen == [1, 2]


def test_torn_tail_is_refused_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / "d.simrec"
    path.write_bytes(encode_recording(_header(), [_event(1), _event(2)])[:-10])
    with pytest.raises(RecordingError) as info:
        RecordingWriter.open_for_append(path)
    assert info.value.code == "REC_ERR_TRUNCATED" and info.value.frame_index == 1
    writer, _ = RecordingWriter.open_for_append(path, repair_tail=True)
    writer.append(_event(3))
    writer.close()
    assert _sequences(path) == [1, 3]


def test_bad_magic_and_unknown_version(tmp_path: Path) -> None:
    zip_file = tmp_path / "e.simrec"
    zip_file.write_bytes(b"PK\x03\x04 not a recording")
    with pytest.raises(RecordingError) as info:
        RecordingReader.open(zip_file)
    assert info.value.code == "REC_ERR_BAD_MAGIC"
    future = tmp_path / "f.simrec"
    data = bytearray(encode_recording(_header(), []))
    data[6:8] = (99).to_bytes(2, "big")
    future.write_bytes(bytes(data))
    with pytest.raises(RecordingError) as info:
        RecordingReader.open(future)
    assert info.value.code == "REC_ERR_UNSUPPORTED_VERSION"


def test_garbage_between_frames_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "g.simrec"
    empty = encode_recording(_header(), [])
    path.write_bytes(
        encode_recording(_header(), [_event(1)])
        + b"SGFR garbage that looks like a marker SGFRSGFR"
        + encode_recording(_header(), [_event(2)])[len(empty):]
    )
    assert _sequences(path) == [1, "REC_ERR_FRAME_TOO_LARGE"]
    assert _sequences(path, skip_corrupt=True) == [1, "REC_ERR_FRAME_TOO_LARGE", 2]
    with RecordingReader.open(path) as reader:
        corrupt = [i for i in reader.frames() if isinstance(i, CorruptFrame)]
    assert corrupt[0].error.frame_index == 1


SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "parking-lot-s42.simrec"


def test_python_reads_the_simulator_sample_written_by_typescript() -> None:
    with RecordingReader.open(SAMPLE) as reader:
        extra = reader.header.run.lineage.extra
        assert (extra["lot.minX"], extra["lot.maxX"], extra["lot.minZ"], extra["lot.maxZ"]) == ("0", "36", "0", "28")
        items = list(reader.frames())
    assert all(isinstance(i, RecordedFrame) for i in items)
    frames = [i.frame for i in items if isinstance(i, RecordedFrame)]
    assert frames[0].WhichOneof("body") == "run_start" and frames[-1].WhichOneof("body") == "run_end"
    events = [f.event for f in frames if f.WhichOneof("body") == "event"]
    assert len(events) == frames[-1].run_end.events_sent == 40
    flaws = {}
    for ev in events:
        flaw = ev.attributes.get("sim.flaw")
        if flaw:
            flaws[flaw] = flaws.get(flaw, 0) + 1
        assert (ev.car_id == "") == (flaw == "missing_car_id")
        assert (ev.coordinates.x > float(extra["lot.maxX"])) == (flaw == "coordinates_outside_lot")
        assert ev.images[0].data[:2] == b"\xff\xd8"  # JPEG
    assert flaws == {
        "missing_car_id": 2,
        "coordinates_outside_lot": 2,
        "duplicate_event_id": 2,
        "exit_without_entry": 2,
        "time_out_of_order": 2,
    }


def test_check_command_reports_damage_at_its_frame(capsys: pytest.CaptureFixture[str]) -> None:
    from simgate.recording.__main__ import main

    fixtures = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "recording"
    assert main(["check", str(fixtures / "basic.simrec")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["check", str(fixtures / "basic.simrec"), str(fixtures / "bad-checksum.simrec")]) == 1
    out = capsys.readouterr().out
    assert "REC_ERR_BAD_CHECKSUM at frame 1 (byte offset 335)" in out
    assert "3 intact frames" in out
