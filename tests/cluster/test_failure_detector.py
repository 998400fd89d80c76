import math

import pytest

from widecol.cluster.failure_detector import FailureDetector


def test_an_endpoint_nobody_suspects_has_zero_phi_however_long_its_silence():
    fd = FailureDetector()
    fd.report("a", 0.0)
    assert fd.phi("a", 1000.0) == 0.0
    assert fd.is_alive("a", 1000.0)


def test_a_suspicion_is_convicted_once_phi_passes_the_threshold():
    fd = FailureDetector(threshold=8.0, expected_interval=1.0)  # refutations expected within 0.25 s
    fd.suspect("a", 10.0)
    delay = 8.0 * math.log(10.0) * 0.25
    assert fd.conviction_delay("a") == pytest.approx(delay)
    assert fd.is_alive("a", 10.0 + delay - 0.01)
    assert not fd.is_alive("a", 10.0 + delay + 0.01)


def test_the_threshold_scales_the_time_to_conviction():
    low, high = FailureDetector(threshold=4.0), FailureDetector(threshold=12.0)
    for fd in (low, high):
        fd.suspect("a", 0.0)
    assert high.conviction_delay("a") == pytest.approx(3 * low.conviction_delay("a"))
    assert not low.is_alive("a", 3.0) and high.is_alive("a", 3.0)


def test_an_endpoint_that_refutes_late_earns_more_patience():
    fd = FailureDetector(threshold=8.0, window_size=4)
    before = fd.conviction_delay("a")
    for start in range(0, 40, 10):
        fd.suspect("a", float(start))
        fd.refute("a", start + 1.5)  # a node that stalls 1.5 s at a time
    assert fd.conviction_delay("a") > 4 * before
    assert fd.conviction_delay("b") == pytest.approx(before)  # others keep theirs


def test_refutations_not_learned_and_capped_delays_do_not_inflate_the_mean():
    fd = FailureDetector(max_interval=2.0, window_size=2)
    fd.suspect("a", 0.0)
    fd.refute("a", 500.0, learn=False)  # came back after conviction (a partition)
    assert fd.mean_refutation("a") == pytest.approx(0.25)
    fd.suspect("a", 600.0)
    fd.refute("a", 900.0)
    assert fd.mean_refutation("a") == pytest.approx((0.25 + 2.0) / 2)


def test_a_suspicion_moves_earlier_never_later_and_closes_on_refutation():
    fd = FailureDetector()
    fd.suspect("a", 5.0)
    fd.suspect("a", 7.0)
    assert fd.suspected_since("a") == 5.0
    fd.suspect("a", 3.0)
    assert fd.suspected_since("a") == 3.0
    fd.refute("a", 3.2)
    assert fd.suspected_since("a") is None and fd.phi("a", 100.0) == 0.0


def test_removed_endpoints_are_forgotten():
    fd = FailureDetector()
    fd.report("x", 1.0)
    fd.suspect("x", 2.0)
    fd.remove("x")
    assert fd.phi("x", 100.0) == 0.0
    assert fd.last_heartbeat("x") is None
