"""The core path, end to end with real parts: a registry push redeploys the
labelled stack, and the label map follows the engine exactly."""

import json
import re
import socket
import time
import uuid

from harness import LATENCY_CHECKS, UnixProxy, manifest_payload, push_local, redacted, wait_until


def decisions(body):
    return [e["decision"] for e in body["events"]]


def test_push_redeploys_labelled_stack(engine, registry, receiver, start_router, containers, uniq):
    secret = uuid.uuid4().hex
    hook = f"/hook/{secret}"
    cid = containers("team/myapp", receiver.url(hook))
    containers("team/myapp", receiver.url(hook))          # a replica: same route, one POST
    other = f"/other/{uuid.uuid4().hex}"
    containers("team/myapp", receiver.url(other))         # another stack: fan-out
    # Created, never started: labels count all the same.
    assert engine.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "created"
    router = start_router()
    router.wait_ready()
    tag = f"t{uniq}"
    push_local(engine, registry, "team/myapp", tag)
    got = receiver.wait_for(hook, 1, timeout=15)
    time.sleep(1.5)   # anything extra (a second POST, a retry) would show up by now
    got = [r for r in receiver.on(hook) if json.loads(r["body"])["tag"] == tag]
    assert len(got) == 1, got
    req = got[0]
    body = json.loads(req["body"])
    assert body["repository"] == "team/myapp"
    assert body["registry"] == f"127.0.0.1:{registry.port}"
    assert body["digest"].startswith("sha256:")
    assert body["event_id"]
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["User-Agent"].startswith("webhook-router/")
    assert len([r for r in receiver.on(other) if json.loads(r["body"])["tag"] == tag]) == 1
    fwd = router.wait_log("forwarded", tag=tag, n=2)
    # The webhook URL's token never reaches a log line.
    assert all(secret not in json.dumps(l) for l in router.lines)
    assert {f["target"] for f in fwd} == {redacted(receiver.url(hook)), redacted(receiver.url(other))}


def webhook_until(router, fixtures, repo, decision, timeout):
    """POSTs a push for repo every 20 ms until its decision is `decision`;
    returns seconds taken."""
    start = time.monotonic()
    n = 0

    def once():
        nonlocal n
        n += 1
        status, body = router.post("/webhook", manifest_payload(fixtures, repo, "latest", f"poll-{repo}-{n}"))
        assert status == 202, body
        return body["events"][0]["decision"] == decision
    wait_until(once, timeout, 0.02, f"{repo} -> {decision}")
    return time.monotonic() - start


def test_container_created_after_start_routes_within_1s(engine, receiver, start_router, containers,
                                                        fixtures_dir, uniq, measure):
    router = start_router()
    router.wait_ready()
    repo = f"team/new{uniq}"
    t0 = time.monotonic()
    containers(repo, receiver.url(f"/new/{uniq}"))
    create_s = time.monotonic() - t0
    took = webhook_until(router, fixtures_dir, repo, "forwarded", 5)
    print(f"docker create returned in {create_s*1000:.0f} ms; route live {took*1000:.0f} ms after that")
    measure("new container routable after docker create returned", took)
    assert took < 1.0 or not LATENCY_CHECKS


def test_removed_container_route_gone_within_1s(engine, receiver, start_router, containers,
                                               fixtures_dir, uniq, measure):
    repo = f"team/gone{uniq}"
    cid = containers(repo, receiver.url(f"/gone/{uniq}"))
    router = start_router()
    router.wait_ready()
    status, body = router.post("/webhook", manifest_payload(fixtures_dir, repo, "latest", "g1"))
    assert decisions(body) == ["forwarded"]
    engine.docker("rm", cid)
    took = webhook_until(router, fixtures_dir, repo, "ignored", 5)
    print(f"route gone {took*1000:.0f} ms after docker rm returned")
    measure("removed container's route gone after docker rm returned", took)
    assert took < 1.0 or not LATENCY_CHECKS
    router.wait_log("route removed")


def test_pulls_and_blob_pushes_cause_nothing(engine, registry, receiver, start_router, containers,
                                             fixtures_dir, uniq):
    hook = f"/noise/{uniq}"
    containers("team/myapp", receiver.url(hook))
    router = start_router()
    router.wait_ready()
    for name in ("00-push-blob.json", "01-pull-blob.json", "02-push-blob.json", "03-pull-blob.json"):
        with open(f"{fixtures_dir}/distribution/{name}", "rb") as f:
            status, body = router.post("/webhook", f.read())
        assert status == 202
        assert decisions(body) == ["ignored"], body
        assert body["events"][0]["reason"]
    # A real pull from the registry: only pull notifications, no forward.
    ref = push_local(engine, registry, "team/other", uniq)
    engine.docker("rmi", ref)
    engine.docker("pull", ref)
    router.wait_log("event ignored", timeout=10)
    time.sleep(1.0)
    assert receiver.on(hook) == []


def test_engine_restart_resyncs(engine, receiver, start_router, containers, fixtures_dir, uniq):
    keep, drop, late = f"team/keep{uniq}", f"team/drop{uniq}", f"team/late{uniq}"
    containers(keep, receiver.url(f"/keep/{uniq}"))
    drop_id = containers(drop, receiver.url(f"/drop/{uniq}"))
    router = start_router(env={"CACHE_TTL_SECS": "0"})
    router.wait_ready()
    engine.stop()
    router.wait_log("docker connection lost", timeout=10)
    # The engine is gone: routing goes on with the last map, /ready stays up.
    status, body = router.post("/webhook", manifest_payload(fixtures_dir, keep, "latest", "r1"))
    assert decisions(body) == ["forwarded"]
    assert router.get("/health")[0] == 200
    engine.start()
    engine.docker("rm", drop_id)
    containers(late, receiver.url(f"/late/{uniq}"))
    router.wait_log("docker synced", n=2, timeout=40)
    wait_until(lambda: router.post("/webhook", manifest_payload(fixtures_dir, late, "x", "r2"))[1]["events"][0]["decision"] == "forwarded",
               5, 0.05, "late route")
    for repo, want in ((keep, "forwarded"), (drop, "ignored"), (late, "forwarded")):
        status, body = router.post("/webhook", manifest_payload(fixtures_dir, repo, "latest", "r3" + repo))
        assert decisions(body) == [want], (repo, body)


def test_reconnect_drops_what_changed_while_cut_off(engine, receiver, start_router, containers,
                                                     fixtures_dir, uniq):
    """Through a tcp:// proxy the test can cut the router off while the engine
    keeps running, change the engine, and check nothing stale survives."""
    a, b = f"team/a{uniq}", f"team/b{uniq}"
    a_id = containers(a, receiver.url(f"/a/{uniq}"))
    proxy = UnixProxy(engine.sock)
    proxy.start()
    try:
        router = start_router(docker_host=proxy.host, env={"CACHE_TTL_SECS": "0"})
        router.wait_ready()
        assert decisions(router.post("/webhook", manifest_payload(fixtures_dir, a, "1", "c1"))[1]) == ["forwarded"]
        proxy.stop()
        router.wait_log("docker connection lost", timeout=10)
        engine.docker("rm", a_id)                       # missed by the router's events
        containers(b, receiver.url(f"/b/{uniq}"))       # likewise
        assert decisions(router.post("/webhook", manifest_payload(fixtures_dir, a, "1", "c2"))[1]) == ["forwarded"]
        proxy.start()
        router.wait_log("docker synced", n=2, timeout=40)
        assert decisions(router.post("/webhook", manifest_payload(fixtures_dir, a, "1", "c3"))[1]) == ["ignored"]
        assert decisions(router.post("/webhook", manifest_payload(fixtures_dir, b, "1", "c4"))[1]) == ["forwarded"]
    finally:
        proxy.stop()


def test_ready_503_until_first_sync(engine, start_router):
    proxy = UnixProxy(engine.sock)
    router = start_router(docker_host=proxy.host)
    try:
        assert router.get("/health") == (200, {"status": "ok"})
        status, body = router.get("/ready")
        assert status == 503
        assert "docker" in body["reason"]
        router.wait_log("docker unreachable")
        proxy.start()
        router.wait_ready(timeout=40)
        status, body = router.get("/ready")
        assert body["status"] == "ready"
    finally:
        proxy.stop()


def raw(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


def test_bad_requests_get_clear_4xx(start_router):
    router = start_router(env={"MAX_BODY_BYTES": "2048"})
    out = raw(router.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert b'"error":"malformed HTTP request' in out
    status, body = router.post("/webhook", b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]
    status, body = router.post("/webhook", {"hello": "world"})
    assert status == 400 and "unknown payload format" in body["error"]
    status, body = router.post("/webhook", {"events": [{"action": "push", "target": {}}]})
    assert status == 400 and "event 1" in body["error"]
    assert router.get("/nope") == (404, {"error": "not found"})
    status, body = router.get("/webhook")
    assert status == 405 and body == {"error": "method not allowed"}
    status, body = router.post("/webhook", b"x" * 5000)
    assert status == 413
    # Pipelined requests on one connection are answered in order.
    out = raw(router.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", out) == [b"200", b"404", b"200"], out
    # A chunked body with Expect: 100-continue.
    body = json.dumps({"events": []}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    out = raw(router.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Expect: 100-continue\r\nConnection: close\r\n\r\n" + chunked)
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 "), out
    assert router.get("/health")[0] == 200


def test_sigterm_finishes_in_flight_forwards(receiver, start_router, containers, fixtures_dir, uniq):
    repo = f"team/slow{uniq}"
    hook = f"/slow/{uniq}"
    containers(repo, receiver.url(hook))
    router = start_router()
    router.wait_ready()
    receiver.delay = 1.0
    try:
        status, body = router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", "s1"))
        assert decisions(body) == ["forwarded"]
        receiver.wait_for(hook, 1, timeout=5)      # the forward is in flight now
        lines = router.stop()                      # SIGTERM; asserts exit 0
    finally:
        receiver.delay = 0.0
    msgs = [l["msg"] for l in lines]
    assert "forwarded" in msgs and msgs.index("forwarded") < msgs.index("stopped")
    # Once stopping, the listener is closed.
    try:
        router.get("/health")
        assert False, "still listening after SIGTERM"
    except OSError:
        pass


def test_routes_endpoint_redacts_urls(engine, receiver, start_router, containers, uniq):
    secret = uuid.uuid4().hex
    repo = f"team/r{uniq}"
    containers(repo, receiver.url(f"/stack/{secret}?token={secret}"), tag="v*",
               extra_labels=["com.docker.compose.project=shop"])
    containers(repo, receiver.url(f"/stack/{secret}?token={secret}"), tag="v*")   # a replica
    router = start_router()
    router.wait_ready()
    status, body = router.get("/routes")
    assert status == 200
    assert secret not in json.dumps(body)
    mine = [r for r in body["routes"] if r["repository"] == repo]
    assert len(mine) == 1, mine
    r = mine[0]
    assert r["url"] == redacted(receiver.url(f"/stack/{secret}?token={secret}"))
    assert r["tag"] == "v*" and r["registry"] is None
    assert len(r["sources"]) == 2
    assert {s["stack"] for s in r["sources"]} == {"shop", None}
    assert all(s["kind"] == "container" and s["engine"] == engine.host for s in r["sources"])
    assert body["count"] == len(body["routes"])
