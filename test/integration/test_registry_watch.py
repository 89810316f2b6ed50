"""The registry watcher (issue 13) with a real docker-registry: a labelled
container asks for its image to be watched every second; pushes move the tag.
Intervals are 1 s here, so "within two intervals" is a few seconds."""

import http.server
import json
import os
import socketserver
import threading
import time

import pytest

from harness import (TIME_FACTOR, Registry, TokenServer, free_port, push_variant, variant_image,
                     wait_until, write_auth_file)


def watched(engine, made, image_ref, label_image, url, tag=None, poll="1s", extra=()):
    """A container created from image_ref, labelled to watch label_image."""
    args = ["create", "--network", "none", "--label", f"webhook-router.image={label_image}",
            "--label", f"webhook-router.url={url}", "--label", f"webhook-router.poll={poll}"]
    if tag:
        args += ["--label", f"webhook-router.tag={tag}"]
    for label in extra:
        args += ["--label", label]
    cid = engine.docker(*args, image_ref).stdout.strip()
    made.append(cid)
    return cid


def watch_of(router, repo):
    routes = router.get("/routes")[1]["routes"]
    for r in routes:
        if r["repository"].endswith(repo) and "watch" in r:
            return r["watch"]
    return None


def bodies(receiver, path):
    return [json.loads(r["body"]) for r in receiver.on(path)]


def test_push_moves_tag_one_forward(engine, start_router, receiver, made, uniq):
    reg = Registry(free_port())
    try:
        repo = f"team/w{uniq}"
        d1 = push_variant(engine, reg.host, repo, "v1", "a")
        path = f"/rw/{uniq}"
        # Created from the pushed image: its RepoDigests say it runs d1.
        watched(engine, made, f"{reg.host}/{repo}:v1", f"{reg.host}/{repo}", receiver.url(path), tag="v1")
        router = start_router(env={"INSECURE_REGISTRIES": reg.host})
        router.wait_ready()
        wait_until(lambda: (watch_of(router, repo) or {}).get("last_digest") == d1, 10, 0.1, "the first check")
        w = watch_of(router, repo)
        assert w["registry"] == reg.host and w["tag"] == "v1" and w["interval_s"] == 1 and w["error"] is None
        time.sleep(2.5 * TIME_FACTOR)
        assert receiver.on(path) == []                 # equal to what runs: nothing to do

        d2 = push_variant(engine, reg.host, repo, "v1", "b")
        t0 = time.monotonic()
        receiver.wait_for(path, 1, timeout=5 * TIME_FACTOR)
        took = time.monotonic() - t0
        got = bodies(receiver, path)
        assert got[0]["digest"] == d2 and got[0]["tag"] == "v1" and got[0]["repository"] == repo
        assert got[0]["event_id"] == f"{reg.host}/{repo}:v1@{d2}"
        change = router.wait_log("registry change")[0]
        assert change["old"] == d1 and change["new"] == d2
        if TIME_FACTOR == 1:
            assert took < 2 * 1.1 + 1, took                # within two intervals (+ the push's own time)

        # The same digest pushed again: nothing.
        push_variant(engine, reg.host, repo, "v1", "b")
        time.sleep(2.5 * TIME_FACTOR)
        assert len(receiver.on(path)) == 1
        metrics = router.get("/metrics")[1].decode()
        assert "webhook_router_watches 1" in metrics
        assert "webhook_router_watch_changes_total 1" in metrics
        assert f'webhook_router_registry_requests_total{{registry="{reg.host}",outcome="ok"}}' in metrics
    finally:
        reg.close()


@pytest.mark.parametrize("local_tag", ["as_it_was", "moved"])
def test_behind_at_startup_redeployed_once(engine, start_router, receiver, made, uniq, local_tag):
    """"moved": the new image was pushed from this host, so the local tag
    names it while the container still runs the old one: the baseline is
    what the container runs (its ImageID), not what its image name says now
    (old code: no redeploy)."""
    reg = Registry(free_port())
    try:
        repo = f"team/b{uniq}"
        push_variant(engine, reg.host, repo, "v1", "a")
        path = f"/behind/{uniq}"
        watched(engine, made, f"{reg.host}/{repo}:v1", f"{reg.host}/{repo}", receiver.url(path), tag="v1")
        # The registry moves on while no router runs.
        d2 = push_variant(engine, reg.host, repo, "v1", "b")
        if local_tag == "as_it_was":
            engine.docker("tag", variant_image(engine, "a"), f"{reg.host}/{repo}:v1")
        router = start_router(env={"INSECURE_REGISTRIES": reg.host})
        router.wait_ready()
        receiver.wait_for(path, 1, timeout=10 * TIME_FACTOR)
        assert bodies(receiver, path)[0]["digest"] == d2
        assert router.wait_log("registry ahead of what runs: redeploying")[0]["new"] == d2
        time.sleep(2.5 * TIME_FACTOR)
        assert len(receiver.on(path)) == 1
    finally:
        reg.close()


def test_webhook_and_poll_see_one_push(engine, start_router, receiver, made, router_port, uniq):
    """The registry's notifications also reach the router: one forward, not two."""
    reg = Registry(free_port(), notify_url=f"http://127.0.0.1:{router_port}/webhook")
    try:
        repo = f"team/n{uniq}"
        path = f"/both/{uniq}"
        # The router first, so the registry's notification of the first push
        # is answered (no route yet) rather than retried into the test.
        router = start_router(env={"INSECURE_REGISTRIES": reg.host})
        router.wait_ready()
        push_variant(engine, reg.host, repo, "v1", "a")
        router.wait_log("push without route", repository=repo)
        watched(engine, made, f"{reg.host}/{repo}:v1", f"{reg.host}/{repo}", receiver.url(path), tag="v1")
        wait_until(lambda: (watch_of(router, repo) or {}).get("last_digest"), 10, 0.1, "the first check")
        d2 = push_variant(engine, reg.host, repo, "v1", "b")
        receiver.wait_for(path, 1, timeout=5 * TIME_FACTOR)
        wait_until(lambda: (watch_of(router, repo) or {}).get("last_digest") == d2 or
                   router.find("duplicate event not forwarded"), 5, 0.1, "the poll to see it too")
        time.sleep(2.5 * TIME_FACTOR)
        assert len(receiver.on(path)) == 1, bodies(receiver, path)
        assert bodies(receiver, path)[0]["digest"] == d2
    finally:
        reg.close()


def test_glob_watches_the_tag_list(engine, start_router, receiver, made, uniq):
    reg = Registry(free_port())
    try:
        repo = f"team/g{uniq}"
        push_variant(engine, reg.host, repo, "v1", "a")
        path = f"/glob/{uniq}"
        # Made from the local test image: its own tag says nothing, so the tag list is watched.
        watched(engine, made, "local/bb:1", f"{reg.host}/{repo}", receiver.url(path), tag="v*")
        router = start_router(env={"INSECURE_REGISTRIES": reg.host})
        router.wait_ready()
        wait_until(lambda: (watch_of(router, repo) or {}).get("tags_known") == 1, 10, 0.1, "the baseline tags")
        assert watch_of(router, repo)["tags"] == "v*"
        push_variant(engine, reg.host, repo, "nightly", "b")     # does not match: nothing
        d3 = push_variant(engine, reg.host, repo, "v2", "c")
        receiver.wait_for(path, 1, timeout=5 * TIME_FACTOR)
        time.sleep(2.5 * TIME_FACTOR)
        got = bodies(receiver, path)
        assert len(got) == 1 and got[0]["tag"] == "v2" and got[0]["digest"] == d3
    finally:
        reg.close()


def test_registry_down_backs_off_and_recovers(engine, start_router, receiver, made, uniq):
    port = free_port()
    reg = Registry(port)
    repo = f"team/d{uniq}"
    path = f"/down/{uniq}"
    try:
        push_variant(engine, reg.host, repo, "v1", "a")
        watched(engine, made, f"{reg.host}/{repo}:v1", f"{reg.host}/{repo}", receiver.url(path), tag="v1")
        router = start_router(env={"INSECURE_REGISTRIES": reg.host})
        router.wait_ready()
        wait_until(lambda: (watch_of(router, repo) or {}).get("last_digest"), 10, 0.1, "the first check")
        reg.close()
        wait_until(lambda: (watch_of(router, repo) or {}).get("error"), 10, 0.1, "the error in /routes")
        time.sleep(4 * TIME_FACTOR)
        fails = router.find("registry check failed")
        assert len(fails) == 1, fails                   # one line, not one per interval
        assert fails[0]["level"] == "warn"
        # Back off: 2, 4, 8 s after an error, so in 4 s at most 3 checks failed.
        assert "refused" in watch_of(router, repo)["error"] or "connect" in watch_of(router, repo)["error"]
        reg = Registry(port)
        push_variant(engine, reg.host, repo, "v1", "a")
        router.wait_log("registry check recovered", timeout=20 * TIME_FACTOR)
        wait_until(lambda: (watch_of(router, repo) or {}).get("error") is None, 5, 0.1, "the error cleared")
    finally:
        reg.close()


class RateLimited(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def test_429_pauses_the_host(engine, start_router, receiver, made, uniq):
    """A registry answering 429 with Retry-After: 2 hears nothing for 2 s."""
    times = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self):
            times.append(time.monotonic())
            self.send_response(429)
            self.send_header("Retry-After", "2")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    srv = RateLimited(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{srv.server_address[1]}"
    try:
        path = f"/rl/{uniq}"
        watched(engine, made, "local/bb:1", f"{host}/team/rl{uniq}", receiver.url(path), tag="v1")
        router = start_router(env={"INSECURE_REGISTRIES": host})
        router.wait_ready()
        wait_until(lambda: len(times) >= 3, 15 * TIME_FACTOR, 0.05, "three requests")
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 1.9 for g in gaps), gaps
        assert "429" in watch_of(router, f"team/rl{uniq}")["error"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_wrong_credentials_one_error(engine, start_router, receiver, made, workdir, uniq):
    password = "pw-" + uniq
    reg = Registry(free_port(), auth="htpasswd", users={"alice": password})
    try:
        repo = f"team/c{uniq}"
        push_variant(engine, reg.host, repo, "v1", "a", user="alice", password=password)
        path = f"/cred/{uniq}"
        watched(engine, made, "local/bb:1", f"{reg.host}/{repo}", receiver.url(path), tag="v1")
        wrong = "wrong-" + uniq
        auth = write_auth_file(workdir, {reg.host: ("alice", wrong)})
        router = start_router(env={"INSECURE_REGISTRIES": reg.host, "REGISTRY_AUTH_FILE": auth})
        router.wait_ready()
        router.wait_log("registry check failed", timeout=10 * TIME_FACTOR)
        time.sleep(4 * TIME_FACTOR)
        errors = router.find("registry check failed")
        assert len(errors) == 1 and errors[0]["level"] == "error", errors
        assert reg.host in errors[0]["error"]
        everything = "\n".join(json.dumps(line) for line in router.lines) + router.stderr_text()
        everything += json.dumps(router.get("/routes")[1]) + router.get("/metrics")[1].decode()
        assert wrong not in everything and password not in everything
    finally:
        reg.close()


def test_token_auth_with_credentials(engine, start_router, receiver, made, workdir, uniq):
    password = "pw-" + uniq + "-tok"
    tokens = TokenServer(users={"bob": password})
    reg = Registry(free_port(), auth="token", token_server=tokens)
    try:
        repo = f"team/t{uniq}"
        push_variant(engine, reg.host, repo, "v1", "a", user="bob", password=password)
        path = f"/tok/{uniq}"
        watched(engine, made, "local/bb:1", f"{reg.host}/{repo}", receiver.url(path), tag="v1")
        auth = write_auth_file(workdir, {reg.host: ("bob", password)})
        router = start_router(env={"INSECURE_REGISTRIES": reg.host, "REGISTRY_AUTH_FILE": auth})
        router.wait_ready()
        wait_until(lambda: (watch_of(router, repo) or {}).get("last_digest"), 10, 0.1, "the first check")
        d2 = push_variant(engine, reg.host, repo, "v1", "b", user="bob", password=password)
        receiver.wait_for(path, 1, timeout=6 * TIME_FACTOR)
        assert bodies(receiver, path)[0]["digest"] == d2
        everything = "\n".join(json.dumps(line) for line in router.lines) + json.dumps(router.get("/routes")[1])
        assert password not in everything
        assert not any(t in everything for t in tokens.tokens)
    finally:
        reg.close()
        tokens.close()
