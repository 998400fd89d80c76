import pytest

from widecol.storage.engine import Engine, EngineOptions


class FakeClock:
    """Local time for the engine, in seconds, moved by the test."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def open_engine(tmp_path, clock):
    """open_engine(**options) opens an engine in tmp_path/'db'; every engine opened is closed at teardown."""
    engines = []

    def opener(**options):
        options.setdefault("background_compaction", False)
        engine = Engine.open(tmp_path / "db", EngineOptions(**options), clock=clock)
        engines.append(engine)
        return engine

    yield opener
    for engine in engines:
        engine.close()
