"""Commit log records, replay, torn and corrupted tails, segment lifecycle and group commit."""

import os
import threading

import msgpack

from widecol.storage.commitlog import HEADER_SIZE, CommitLog


def write(directory, payloads, **kwargs):
    log = CommitLog(directory, **kwargs)
    list(log.replay())
    log.start()
    positions = [log.append(msgpack.packb(p), ["t"]) for p in payloads]
    log.close()
    return positions


def replayed(directory):
    log = CommitLog(directory)
    items = [item for _, item in log.replay()]
    log.close()
    return items


def segment(directory):
    (path,) = sorted(p for p in directory.iterdir() if p.name.startswith("CommitLog-"))
    return path


def test_replay_returns_every_record_in_order(tmp_path):
    write(tmp_path, [[i, b"x" * i] for i in range(100)])
    assert replayed(tmp_path) == [[i, b"x" * i] for i in range(100)]


def test_torn_tail_is_skipped_and_earlier_records_kept(tmp_path, caplog):
    write(tmp_path, [[i] for i in range(10)])
    path = segment(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    assert replayed(tmp_path) == [[i] for i in range(9)]
    assert str(path) in caplog.text and "torn" in caplog.text


def test_bit_flip_skips_only_the_damaged_record(tmp_path, caplog):
    positions = write(tmp_path, [[i, b"payload"] for i in range(10)])
    path = segment(tmp_path)
    damaged_offset = positions[4][1] - 3  # inside record 4's payload
    data = bytearray(path.read_bytes())
    data[damaged_offset] ^= 0x40
    path.write_bytes(bytes(data))
    assert replayed(tmp_path) == [[i, b"payload"] for i in range(10) if i != 4]
    assert "CRC mismatch" in caplog.text and str(path) in caplog.text


def test_garbage_header_skips_the_segment_without_failing(tmp_path):
    write(tmp_path, [[1]])
    path = segment(tmp_path)
    path.write_bytes(b"\x00" * (HEADER_SIZE + 50))
    assert replayed(tmp_path) == []


def test_segments_roll_and_are_deleted_once_clean(tmp_path):
    log = CommitLog(tmp_path, segment_bytes=4096)
    log.start()
    last = None
    for i in range(200):
        last = log.append(msgpack.packb([i, b"y" * 100]), ["t"])
    assert len(log.segment_ids()) > 3
    log.mark_clean("t", last)
    assert log.segment_ids() == [last[0]]  # only the active segment is left
    log.close()


def test_segment_dirty_for_another_table_is_kept(tmp_path):
    log = CommitLog(tmp_path, segment_bytes=4096)
    log.start()
    log.append(msgpack.packb([b"u" * 200]), ["u"])
    last = None
    for i in range(100):
        last = log.append(msgpack.packb([i, b"y" * 100]), ["t"])
    first = log.segment_ids()[0]
    log.mark_clean("t", last)
    assert first in log.segment_ids()
    log.close()


def test_batch_mode_group_commit_shares_fsyncs(tmp_path):
    log = CommitLog(tmp_path, sync="batch")
    log.start()
    barrier = threading.Barrier(16)

    def writer():
        barrier.wait()
        for i in range(20):
            log.wait_synced(log.append(msgpack.packb([i]), ["t"]))

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.records == 320
    assert log.syncs < 320  # concurrent writers shared fsyncs
    log.close()
    assert len(replayed(tmp_path)) == 320


def test_segment_ids_continue_above_the_floor(tmp_path):
    log = CommitLog(tmp_path)
    log.start(min_segment_id=42)
    assert log.append(msgpack.packb([1]), ["t"])[0] == 42
    log.close()
    assert os.path.exists(tmp_path / "CommitLog-0000000000000042.log")
