"""The one merge rule: its order and its algebra."""

from hypothesis import given
from hypothesis import strategies as st

from widecol.storage.cells import reconcile, shadow_row

cells = st.tuples(
    st.integers(0, 5), st.one_of(st.none(), st.sampled_from([b"", b"a", b"b"])), st.integers(0, 3), st.integers(0, 2)
)


def test_higher_timestamp_wins():
    assert reconcile((2, b"a", 0, 0), (3, b"b", 0, 0)) == (3, b"b", 0, 0)
    assert reconcile((3, None, 9, 0), (2, b"b", 0, 0)) == (3, None, 9, 0)


def test_tombstone_wins_a_tie():
    assert reconcile((5, b"z", 0, 0), (5, None, 1, 0)) == (5, None, 1, 0)
    assert reconcile((5, None, 1, 0), (5, b"z", 0, 0)) == (5, None, 1, 0)


def test_greater_value_wins_a_tie_between_live_cells():
    assert reconcile((5, b"a", 0, 0), (5, b"b", 0, 0)) == (5, b"b", 0, 0)


@given(cells, cells)
def test_commutative(a, b):
    assert reconcile(a, b) == reconcile(b, a)


@given(cells, cells, cells)
def test_associative(a, b, c):
    assert reconcile(reconcile(a, b), c) == reconcile(a, reconcile(b, c))


@given(cells)
def test_idempotent(a):
    assert reconcile(a, a) == a


def test_deletion_shadows_cells_at_or_below_its_timestamp():
    row = {b"a": (5, b"x", 0, 0), b"b": (6, b"y", 0, 0)}
    assert shadow_row(5, row, now=0) == {b"b": (6, b"y", 0, 0)}


def test_collection_deletion_shadows_older_elements_only():
    row = {b"m\x00": (5, None, 0, 0), b"m\x00k1": (4, b"old", 0, 0), b"m\x00k2": (6, b"new", 0, 0), b"mx": (1, b"s", 0, 0)}
    assert shadow_row(None, row, now=0) == {b"m\x00k2": (6, b"new", 0, 0), b"mx": (1, b"s", 0, 0)}


def test_expired_cell_reads_absent_and_compacts_to_a_tombstone():
    row = {b"a": (5, b"x", 100, 10)}  # expires at local time 100
    assert shadow_row(None, row, now=99) == row
    assert shadow_row(None, row, now=100) == {}
    assert shadow_row(None, row, now=100, purge_before=0) == {b"a": (5, None, 100, 0)}
    assert shadow_row(None, row, now=100, purge_before=101) == {}
