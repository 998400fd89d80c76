from widecol.cluster.failure_detector import FailureDetector


def test_regular_heartbeats_keep_an_endpoint_alive():
    fd = FailureDetector()
    for t in range(30):
        fd.report("a", float(t))
    assert fd.is_alive("a", 30.5)


def test_silent_endpoint_is_convicted_after_phi_passes_threshold():
    fd = FailureDetector(threshold=8.0)
    for t in range(30):
        fd.report("a", float(t))
    assert fd.is_alive("a", 29 + 18.0)
    assert not fd.is_alive("a", 29 + 19.0)  # phi = 19 / ln(10) > 8


def test_long_gap_is_not_recorded_as_an_interval():
    fd = FailureDetector(max_interval=2.0)
    for t in range(10):
        fd.report("a", float(t))
    fd.report("a", 60.0)
    assert fd.phi("a", 61.0) < 1.0


def test_unknown_and_removed_endpoints_have_zero_phi():
    fd = FailureDetector()
    assert fd.phi("x", 100.0) == 0.0
    fd.report("x", 0.0)
    fd.remove("x")
    assert fd.phi("x", 100.0) == 0.0
