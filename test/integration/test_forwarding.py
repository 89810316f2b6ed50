"""The forwarder against real receivers on loopback: HTTPS with and without
verification, retries, timeouts, coalescing and backpressure."""

import json
import tempfile
import time

import pytest

from harness import TIME_FACTOR, Receiver, make_cert, manifest_payload, wait_until


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="wr-tls-", dir="/tmp")
    good = make_cert(d, "localhost", "DNS:localhost,IP:127.0.0.1")
    other = make_cert(d, "otherhost", "DNS:otherhost")
    yield {"good": good, "other": other}


@pytest.fixture(scope="module")
def https(certs):
    r = Receiver(*certs["good"])
    yield r
    r.close()


@pytest.fixture(scope="module")
def https_other(certs):
    r = Receiver(*certs["other"])
    yield r
    r.close()


def push(router, fixtures, repo, tag, event_id):
    status, body = router.post("/webhook", manifest_payload(fixtures, repo, tag, event_id))
    return status, body


def test_https_insecure_delivers(https, start_router, containers, fixtures_dir, uniq):
    repo = f"team/tlsi{uniq}"
    containers(repo, https.url(f"/tls/{uniq}"))
    router = start_router(env={"TLS_INSECURE": "1"})
    router.wait_ready()
    assert router.find("TLS_INSECURE=1: certificates of https targets are not verified; anyone on the "
                       "path can read the webhook tokens")
    push(router, fixtures_dir, repo, "v1", f"ti-{uniq}")
    https.wait_for(f"/tls/{uniq}", 1)


def test_https_with_ca_file_delivers(https, certs, start_router, containers, fixtures_dir, uniq):
    repo = f"team/tlsc{uniq}"
    containers(repo, https.url(f"/tlsca/{uniq}", host="localhost"))
    router = start_router(env={"TLS_CA_FILE": certs["good"][0]})
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"tc-{uniq}")
    https.wait_for(f"/tlsca/{uniq}", 1)


def test_https_unverified_is_refused(https, start_router, containers, fixtures_dir, uniq):
    repo = f"team/tlsn{uniq}"
    containers(repo, https.url(f"/tlsno/{uniq}"))
    # Retries allowed, yet a certificate that failed verification is final:
    # one attempt, one error line that says why.
    router = start_router(env={"FORWARD_RETRIES": "3"})
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"tn-{uniq}")
    failed = router.wait_log("forward failed")[0]
    assert failed["error"] == "certificate verify failed: self-signed certificate"
    assert failed["attempts"] == 1
    time.sleep(1.5 * TIME_FACTOR)   # longer than the first backoff: no retry comes
    assert not router.find("forward attempt failed, retrying")
    assert len(router.find("forward failed")) == 1
    assert https.on(f"/tlsno/{uniq}") == []


def test_https_wrong_hostname_is_refused(https_other, certs, start_router, containers, fixtures_dir, uniq):
    repo = f"team/tlsh{uniq}"
    containers(repo, https_other.url(f"/tlsh/{uniq}", host="localhost"))
    router = start_router(env={"TLS_CA_FILE": certs["other"][0], "FORWARD_RETRIES": "0"})
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"th-{uniq}")
    assert "hostname mismatch" in router.wait_log("forward failed")[0]["error"]
    assert https_other.on(f"/tlsh/{uniq}") == []


def test_bad_ca_file_stops_startup(binary, router_port, tmp_path):
    import subprocess
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    r = subprocess.run([binary], env={"TLS_CA_FILE": str(bad), "LISTEN_PORT": str(router_port),
                                      "DOCKER_HOST": "unix:///nonexistent.sock"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "TLS_CA_FILE holds no usable PEM certificate" in r.stdout


def test_500_500_200_delivers_on_attempt_3(receiver, start_router, containers, fixtures_dir, uniq):
    path = f"/flaky/{uniq}"
    repo = f"team/flaky{uniq}"
    receiver.script[path] = [500, 500]
    containers(repo, receiver.url(path))
    router = start_router()
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"f-{uniq}")
    line = router.wait_log("forwarded", timeout=15, event_id=f"f-{uniq}")[0]
    assert line["attempt"] == 3 and line["status"] == 204
    assert len(receiver.on(path)) == 3
    assert len(router.find("forward attempt failed, retrying", event_id=f"f-{uniq}")) == 2


def test_404_is_not_retried(receiver, start_router, containers, fixtures_dir, uniq):
    path = f"/gone404/{uniq}"
    repo = f"team/g404{uniq}"
    receiver.script[path] = [404]
    containers(repo, receiver.url(path))
    router = start_router()
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"n-{uniq}")
    line = router.wait_log("forward failed", event_id=f"n-{uniq}")[0]
    assert line["attempts"] == 1 and line["error"] == "HTTP 404"
    time.sleep(1.0)
    assert len(receiver.on(path)) == 1


def test_refused_is_retried(start_router, containers, fixtures_dir, uniq):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    repo = f"team/ref{uniq}"
    containers(repo, f"http://127.0.0.1:{port}/x")
    router = start_router(env={"FORWARD_RETRIES": "2"})
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"r-{uniq}")
    line = router.wait_log("forward failed", timeout=15, event_id=f"r-{uniq}")[0]
    assert line["attempts"] == 3 and "refused" in line["error"]


def test_hanging_target_times_out_and_loop_stays_responsive(receiver, start_router, containers,
                                                           fixtures_dir, uniq):
    path = f"/hang/{uniq}"
    repo = f"team/hang{uniq}"
    receiver.script[path] = ["hang"]
    containers(repo, receiver.url(path))
    router = start_router(env={"FORWARD_TIMEOUT_SECS": "1", "FORWARD_RETRIES": "1"})
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"h-{uniq}")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.8:     # the forward hangs meanwhile
        assert router.get("/health")[0] == 200
    retry = router.wait_log("forward attempt failed, retrying", event_id=f"h-{uniq}")[0]
    assert retry["error"] == "no complete answer within 1000 ms"
    line = router.wait_log("forwarded", timeout=10, event_id=f"h-{uniq}")[0]
    assert line["attempt"] == 2


def test_two_pushes_in_window_are_one_post(receiver, start_router, containers, fixtures_dir, uniq):
    path = f"/deb/{uniq}"
    repo = f"team/deb{uniq}"
    containers(repo, receiver.url(path))
    router = start_router(env={"DEBOUNCE_MS": "600"})
    router.wait_ready()
    push(router, fixtures_dir, repo, "latest", f"d1-{uniq}")
    push(router, fixtures_dir, repo, f"sha-{uniq}", f"d2-{uniq}")
    got = receiver.wait_for(path, 1, timeout=5)
    time.sleep(1.0)
    assert len(receiver.on(path)) == 1
    assert json.loads(got[0]["body"])["tag"] == f"sha-{uniq}"     # the last event
    assert router.wait_log("forwarded", event_id=f"d2-{uniq}")[0]["merged"] == 2


def test_queue_full_answers_503(receiver, start_router, containers, fixtures_dir, uniq):
    path = f"/full/{uniq}"
    repo = f"team/full{uniq}"
    receiver.script[path] = ["hang", "hang", "hang"]
    containers(repo, receiver.url(path))
    router = start_router(env={"FORWARD_CONCURRENCY": "1", "FORWARD_QUEUE_MAX": "1",
                               "FORWARD_TIMEOUT_SECS": "2", "FORWARD_RETRIES": "0"})
    router.wait_ready()
    assert push(router, fixtures_dir, repo, "a", f"q1-{uniq}")[0] == 202    # in flight
    wait_until(lambda: receiver.on(path), 5)
    assert push(router, fixtures_dir, repo, "b", f"q2-{uniq}")[0] == 202    # waiting
    status, body = push(router, fixtures_dir, repo, "c", f"q3-{uniq}")
    assert status == 503 and "queue full" in body["error"]
    # Not recorded as seen: the registry's retry of q3 goes through later.
    router.wait_log("forward failed", timeout=10, event_id=f"q2-{uniq}")
    status, body = push(router, fixtures_dir, repo, "c", f"q3-{uniq}")
    assert status == 202 and body["events"][0]["decision"] == "forwarded"


def test_target_named_localhost(receiver, start_router, containers, fixtures_dir, uniq):
    path = f"/lh/{uniq}"
    repo = f"team/lh{uniq}"
    containers(repo, receiver.url(path, host="localhost"))
    router = start_router()
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"l-{uniq}")
    receiver.wait_for(path, 1)


def test_keepalive_reuses_one_connection(start_router, containers, fixtures_dir, uniq):
    own = Receiver()
    try:
        repo = f"team/ka{uniq}"
        containers(repo, own.url(f"/ka/{uniq}"))
        router = start_router()
        router.wait_ready()
        for i in range(8):
            push(router, fixtures_dir, repo, f"v{i}", f"ka{i}-{uniq}")
            # Logged once the response is in and the connection is back in the pool.
            router.wait_log("forwarded", event_id=f"ka{i}-{uniq}")
        assert len(own.on(f"/ka/{uniq}")) == 8
        assert own.connections == 1
    finally:
        own.close()


def test_server_closing_pooled_connections_loses_nothing(start_router, containers, fixtures_dir, uniq):
    own = Receiver()
    own.drop_after_reply = True
    try:
        repo = f"team/drop{uniq}"
        containers(repo, own.url(f"/dr/{uniq}"))
        router = start_router(env={"FORWARD_RETRIES": "0"})
        router.wait_ready()
        for i in range(6):
            push(router, fixtures_dir, repo, f"v{i}", f"dr{i}-{uniq}")
            if i % 2:
                time.sleep(0.05)   # sometimes the close is seen first, sometimes not
        own.wait_for(f"/dr/{uniq}", 6)
        time.sleep(0.5)
        assert len(own.on(f"/dr/{uniq}")) == 6
        assert not router.find("forward failed")
    finally:
        own.close()


def test_ipv6_target(start_router, containers, fixtures_dir, uniq):
    own = Receiver(ipv6=True)
    try:
        repo = f"team/v6{uniq}"
        containers(repo, own.url(f"/v6/{uniq}"))
        router = start_router()
        router.wait_ready()
        push(router, fixtures_dir, repo, "v1", f"v6-{uniq}")
        got = own.wait_for(f"/v6/{uniq}", 1)
        assert got[0]["headers"]["Host"] == f"[::1]:{own.port}"
    finally:
        own.close()


def test_placeholders_are_percent_encoded(receiver, start_router, containers, fixtures_dir, uniq):
    repo = f"team/ph{uniq}"
    containers(repo, receiver.url(f"/ph/{uniq}?tag={{tag}}&repo={{repository}}&d={{digest}}"))
    router = start_router()
    router.wait_ready()
    status, _ = router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1.0_rc", f"ph-{uniq}",
                                                         digest="sha256:20a5b08e26ee5b7292cac7a88a810f82"
                                                                "25f0b3e031ed4262c8d58f2edeabec94"))
    assert status == 202
    want = (f"/ph/{uniq}?tag=v1.0_rc&repo=team%2Fph{uniq}"
            "&d=sha256%3A20a5b08e26ee5b7292cac7a88a810f8225f0b3e031ed4262c8d58f2edeabec94")
    receiver.wait_for(want, 1)


def test_429_honours_retry_after(receiver, start_router, containers, fixtures_dir, uniq):
    path = f"/busy/{uniq}"
    repo = f"team/busy{uniq}"
    receiver.script[path] = [429]          # the receiver sends Retry-After: 1 with it
    containers(repo, receiver.url(path))
    router = start_router()
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"b-{uniq}")
    retry = router.wait_log("forward attempt failed, retrying", event_id=f"b-{uniq}")[0]
    assert retry["status"] == 429 and retry["retry_in_ms"] == 1000
    line = router.wait_log("forwarded", timeout=10, event_id=f"b-{uniq}")[0]
    assert line["attempt"] == 2
    first, second = receiver.on(path)[:2]
    assert second["time"] - first["time"] >= 0.95


def test_deep_backlog_pauses_intake_then_lets_go(receiver, start_router, containers, fixtures_dir, uniq):
    """Pushes arriving faster than forwards complete: past a backlog of 256
    the listener stops reading for up to 50 ms instead of buffering without
    bound; with targets this slow it lets go again, so every push is still
    answered 202 (the queue limit is far away) and delivered, and /health
    keeps answering."""
    import concurrent.futures
    path = f"/backlog/{uniq}"
    repo = f"team/backlog{uniq}"
    slow = Receiver()
    slow.delay = 0.2
    containers(repo, slow.url(path))
    router = start_router(env={"FORWARD_CONCURRENCY": "32", "FORWARD_QUEUE_MAX": "100000", "LOG_LEVEL": "debug"})
    try:
        router.wait_ready()
        n = 1500
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: push(router, fixtures_dir, repo, f"t{i}", f"bk-{uniq}-{i}")[0],
                                     range(n)))
        assert statuses.count(202) == n, {s: statuses.count(s) for s in set(statuses)}
        line = router.wait_log("webhook intake paused: forward backlog")[0]
        assert line["queued"] >= 256
        t0 = time.monotonic()
        assert router.get("/health")[0] == 200
        health_s = time.monotonic() - t0
        wait_until(lambda: len(slow.on(path)) >= n, 60, 0.2, f"all {n} forwards delivered")
        pauses = router.get("/metrics")[1]
        pauses = pauses.decode() if isinstance(pauses, bytes) else pauses
        count = [l for l in pauses.splitlines() if l.startswith("webhook_router_intake_pauses_total ")]
        print(f"\n{n} pushes to a 200 ms target: {count[0]}; /health {health_s * 1000:.1f} ms while backlogged")
        assert float(count[0].split()[1]) >= 1
    finally:
        slow.close()


def test_shutdown_bounded_with_retry_far_ahead(receiver, start_router, containers, fixtures_dir, uniq):
    """SIGTERM with a retry scheduled a minute ahead (a Retry-After of 2^63 ms
    clamped to 60 s): the job gets its last attempt at once, the router exits
    0 within FORWARD_TIMEOUT_SECS plus a little, and what was not delivered
    is one error line naming it."""
    path = f"/far/{uniq}"
    repo = f"team/far{uniq}"
    receiver.script[path] = [503, "hang"]
    receiver.retry_after = "9223372036854776"
    containers(repo, receiver.url(path))
    router = start_router(env={"FORWARD_TIMEOUT_SECS": "2", "FORWARD_RETRIES": "5"})
    router.wait_ready()
    push(router, fixtures_dir, repo, "v1", f"far-{uniq}")
    retry = router.wait_log("forward attempt failed, retrying", event_id=f"far-{uniq}")[0]
    assert retry["retry_in_ms"] == 60000
    t0 = time.monotonic()
    router.stop(timeout=2 + 3 * TIME_FACTOR)
    took = time.monotonic() - t0
    assert len(receiver.on(path)) == 2          # the last attempt went out at once
    failed = [line for line in router.lines if line["level"] == "error"]
    assert len(failed) == 1, failed
    assert failed[0]["repository"] == repo and failed[0]["tag"] == "v1" and failed[0]["attempts"] == 2
    assert uniq not in failed[0]["target"]      # the target is redacted
    if not TIME_FACTOR > 1:
        assert took < 4.5, took
