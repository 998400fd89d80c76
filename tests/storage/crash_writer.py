"""Child process of test_crash.py: writes in batch mode from several threads and prints each acknowledged key.

Usage: python crash_writer.py DIR ROUND. Runs until killed. Small memtables make flushes and compactions happen
while it runs, so a kill lands in the middle of them too.
"""

import sys
import threading

from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.mutation import Mutation

directory, round_ = sys.argv[1], sys.argv[2]
engine = Engine.open(
    directory,
    EngineOptions(commitlog_sync="batch", memtable_bytes=200_000, commitlog_segment_bytes=64 * 1024,
                  compaction_min_threshold=2),
)
engine.create_table("t")
out = threading.Lock()


def writer(thread: int) -> None:
    i = 0
    while True:
        key = f"r{round_}-t{thread}-{i}".encode()
        engine.apply(Mutation("t", key).set(b"", b"v", key * 3, 1))
        with out:
            sys.stdout.write(key.decode() + "\n")
            sys.stdout.flush()
        i += 1


for t in range(4):
    threading.Thread(target=writer, args=(t,), daemon=True).start()
threading.Event().wait()
