"""The table manifest: the one file that says which SSTables are live, replaced atomically.

How this works. MANIFEST holds the live SSTable generations, the commit log position up to which the table's data
is in those SSTables (replay skips records at or before it), the next generation number and the table's options.
It is written to MANIFEST.tmp, fsynced, renamed over MANIFEST and the folder fsynced, so a crash leaves either the
old or the new manifest, never a mix. A flush or compaction becomes visible, and old files become garbage, only
at that rename; on open, every SSTable file or .tmp file that the manifest does not list is deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from widecol.storage.sstable.format import seal, unseal

NAME = "MANIFEST"


@dataclass
class Manifest:
    generations: list[int] = field(default_factory=list)
    replay_position: tuple[int, int] = (0, 0)
    next_generation: int = 1
    options: dict = field(default_factory=dict)

    def check(self) -> None:
        """Invariants: generations unique, sorted, below next_generation."""
        assert self.generations == sorted(set(self.generations)), self.generations
        assert all(0 < g < self.next_generation for g in self.generations), (self.generations, self.next_generation)

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / NAME
        raw = unseal(path.read_bytes(), str(path))
        assert isinstance(raw, dict)
        return cls(
            generations=list(raw["generations"]),
            replay_position=tuple(raw["replay_position"]),  # type: ignore[arg-type]
            next_generation=raw["next_generation"],
            options=dict(raw["options"]),
        )

    def save(self, directory: Path) -> None:
        """Replace DIRECTORY's manifest with this one, durably and atomically."""
        self.check()
        payload = msgpack.packb(
            {
                "generations": self.generations,
                "replay_position": list(self.replay_position),
                "next_generation": self.next_generation,
                "options": self.options,
            }
        )
        tmp = directory / (NAME + ".tmp")
        with open(tmp, "wb") as f:
            f.write(seal(payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / NAME)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
