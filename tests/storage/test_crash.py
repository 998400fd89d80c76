"""SIGKILL at random moments loses no acknowledged write (batch commit log mode), across flushes and compactions."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from widecol.storage.engine import Engine, EngineOptions

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(directory: Path, round_: int, seconds: float) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), str(round_)], stdout=subprocess.PIPE, text=True, env=env
    )
    acked: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.endswith("\n"):
                acked.append(line.strip())

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    return acked


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_write(tmp_path):
    rng = random.Random(7)
    acked: list[str] = []
    for round_ in range(6):
        acked += run_and_kill(tmp_path, round_, rng.uniform(0.8, 2.5))
        engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
        try:
            table = engine.table("t")
            missing = [k for k in acked if not table.read(k.encode())]
            assert not missing, f"round {round_}: {len(missing)} of {len(acked)} acknowledged writes lost"
            for k in rng.sample(acked, min(50, len(acked))):
                ((_, cells),) = table.read(k.encode())
                assert cells[b"v"][1] == k.encode() * 3
            table.check()
        finally:
            engine.close()
    assert len(acked) > 500, len(acked)
    print("acked", len(acked))
