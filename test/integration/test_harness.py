"""The harness itself: what every integration test relies on."""

from harness import free_port


def test_free_port_never_hands_out_a_port_twice():
    # Fixtures pick their ports before anything listens on them (the
    # registry's and the router's, for one): two picks must differ, or two
    # servers end up on one port and a test talks to the wrong one.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports), len(ports) - len(set(ports))
