"""Many idle clients against the real binary: memory stays bounded, the
connection cap refuses cleanly, and the router keeps serving. Many uploads
that are not authenticated: with WEBHOOK_TOKEN their bodies are never read,
with only WEBHOOK_HMAC_SECRET the bytes held are capped (MAX_BUFFERED_BYTES).

(The byte-level hostile clients - slowloris, oversize headers, bad chunked
framing, pipelined garbage, mid-body disconnects - are in
test/unit/test_http_server.c, against the listener itself.)"""

import os
import resource
import socket
import time

import pytest

from harness import Router, free_port, wait_until

IDLE = 5000


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sanitized(binary):
    """ASan/valgrind builds carry shadow memory and quarantines: their RSS
    says nothing about the router's own."""
    with open(binary, "rb") as f:
        exe = f.read()
    # A static runtime names itself; a shared libasan leaves only its hooks.
    return b"AddressSanitizer" in exe or b"__asan_init" in exe or os.environ.get("WR_VALGRIND") == "1"


def raw_get(port, path="/health", timeout=5):
    """One request on a new connection: (status line, whole reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + content_length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(), data


def content_length(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + 500
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the open file limit ({hard}) is below {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_five_thousand_idle_connections(binary, many_fds, tmp_path):
    port = free_port()
    router = Router(binary, port, {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
                                   "MAX_CONNECTIONS": str(IDLE), "LOG_LEVEL": "info"})
    conns = []
    try:
        assert raw_get(port)[0] == "HTTP/1.1 200 OK"
        time.sleep(0.2)
        before = rss_kib(router.proc.pid)
        t0 = time.monotonic()
        for _ in range(IDLE):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            conns.append(s)
        # Accepted by the router (not just queued by the kernel): one more
        # connection is refused by the router itself, with a reply.
        def refused():
            r = raw_get(port)
            return r if r[0].startswith("HTTP/1.1 503") else None
        status, reply = wait_until(refused, 30, 0.2, "the connection past the cap to be refused")
        connect_s = time.monotonic() - t0
        assert b"too many connections" in reply and b"Connection: close" in reply
        after = rss_kib(router.proc.pid)
        per_conn = (after - before) * 1024 / IDLE
        print(f"\n{IDLE} idle connections: connected and accepted in {connect_s:.1f} s; router RSS "
              f"{before / 1024:.1f} MiB -> {after / 1024:.1f} MiB ({per_conn:.0f} bytes per connection)")
        if not sanitized(binary):
            assert after <= 48 * 1024, f"RSS {after} KiB with {IDLE} idle connections"
        router.wait_log("connection refused: too many connections")
        # Past the cap every newcomer gets the same clean refusal; nothing breaks.
        for _ in range(20):
            assert raw_get(port)[0] == "HTTP/1.1 503 Service Unavailable"

        # The idle ones are still served (the keep-alive limit is 60 s).
        for s in conns[::500]:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                assert chunk, "an idle connection was closed"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK"), data[:200]

        # Room again once some leave.
        for s in conns[:100]:
            s.close()
        del conns[:100]
        wait_until(lambda: raw_get(port)[0] == "HTTP/1.1 200 OK", 10, 0.1, "/health once below the cap")
    finally:
        for s in conns:
            s.close()
        router.stop()


def test_cap_lowered_to_the_file_limit(binary, tmp_path):
    """A cap the open file limit cannot honour is lowered at start, with a
    warning, so that the cap (a clean 503) is hit before accept() fails."""
    wrapper = tmp_path / "limited.sh"
    wrapper.write_text(f"#!/bin/sh\nulimit -n 256\nexec {binary}\n")
    wrapper.chmod(0o755)
    port = free_port()
    router = Router(str(wrapper), port, {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
                                         "MAX_CONNECTIONS": "100000"})
    try:
        line = router.wait_log("MAX_CONNECTIONS lowered to fit the open file limit")[0]
        assert line["nofile"] == 256 and line["max_connections"] == 100000
        assert 16 <= line["now"] < 256
        assert raw_get(port)[0] == "HTTP/1.1 200 OK"
    finally:
        router.stop()


# ---- request bodies before authentication ------------------------------------

import hashlib
import hmac
import json
import select

from harness import manifest_payload

FLOOD = 300
BIG = 1024 * 1024          # MAX_BODY_BYTES (the default): the largest body each may send
TOKEN = "tok-b0d1e5"
SECRET = "hmac-b0d1e5"


def peak_rss_kib(pid):
    """VmHWM: the most the router ever held, so a burst between two samples counts too."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def flood_open(port, head):
    socks = []
    for _ in range(FLOOD):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(head)
        socks.append(s)
    return socks


def answered(s):
    """What the router said on s so far, without waiting (b"" if nothing)."""
    data = b""
    while select.select([s], [], [], 0)[0]:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def trickle(socks, replies, sent, upto, step=128 * 1024):
    """Each socket not yet answered sends body bytes, round by round, until it
    has sent `upto` bytes in all (counted in `sent`) or gets a final reply
    (then it stops, as a client would). A 100 Continue invites the body: it
    is kept in `replies` only if nothing follows it."""
    for s in socks:
        sent.setdefault(id(s), 0)
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    chunk = b"x" * step
    interim = set()
    while True:
        busy = False
        for s in socks:
            if id(s) in replies or sent[id(s)] >= upto:
                if id(s) in interim and id(s) not in replies:
                    replies[id(s)] = cont
                continue
            got = answered(s)
            if got == cont:
                interim.add(id(s))
            elif got:
                replies[id(s)] = got
                continue
            n = min(step, upto - sent[id(s)])
            try:
                s.sendall(chunk[:n])
            except OSError:
                replies[id(s)] = answered(s) or b"<closed>"
                continue
            sent[id(s)] += n
            busy = True
        if not busy:
            for s in socks:
                if id(s) in interim and id(s) not in replies:
                    replies[id(s)] = cont
            return


def test_wrong_token_bodies_are_never_read(binary, start_router, receiver, containers, fixtures_dir, uniq):
    """With WEBHOOK_TOKEN, a wrong token is refused from the request head:
    401, no 100 Continue, the body never held, so 300 such uploads cost
    the router next to nothing, and a real push still goes through."""
    repo = f"team/flood{uniq}"
    containers(repo, receiver.url(f"/flood/{uniq}"))
    router = start_router(env={"WEBHOOK_TOKEN": TOKEN, "LOG_LEVEL": "info"})
    router.wait_ready()
    head = (f"POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-{uniq}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BIG}\r\nExpect: 100-continue\r\n\r\n").encode()
    socks = flood_open(router.port, head)
    replies = {}
    try:
        # A client that does not wait for 100 Continue sends its body anyway
        # (all but its last byte: before the fix, each body was held whole).
        trickle(socks, replies, {}, BIG - 1)
        for s in socks:
            if id(s) not in replies:
                s.settimeout(5)
                replies[id(s)] = s.recv(65536)
        # Measured before any check: how much the flood made the router hold
        # (once it has read what was sent).
        time.sleep(0.5)
        rss = rss_kib(router.proc.pid)
        peak = peak_rss_kib(router.proc.pid)
        print(f"\n{FLOOD} wrong-token uploads of {BIG >> 10} KiB: router RSS {rss / 1024:.1f} MiB, "
              f"peak {peak / 1024:.1f} MiB")
        if not sanitized(binary):
            assert peak < 64 * 1024, f"router peak RSS {peak} KiB"
        for data in replies.values():
            assert data.startswith(b"HTTP/1.1 401 "), data[:200]
            assert b"100 Continue" not in data and b"Connection: close" in data

        status, body = router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"f-{uniq}"),
                                   {"Authorization": f"Bearer {TOKEN}"})
        assert status == 202 and body["events"][0]["decision"] == "forwarded", body
        receiver.wait_for(f"/flood/{uniq}", 1)
    finally:
        for s in socks:
            s.close()


def test_hmac_bodies_are_capped(binary, start_router, receiver, containers, fixtures_dir, uniq):
    """With only WEBHOOK_HMAC_SECRET the body must be read to check it, so the
    bytes held across all connections are capped (MAX_BUFFERED_BYTES): 300
    slow uploads get 503 past the cap and memory stays bounded; a signed
    push is still accepted meanwhile, and again once they are gone."""
    repo = f"team/cap{uniq}"
    containers(repo, receiver.url(f"/cap/{uniq}"))
    cap = 32 * 1024 * 1024
    router = start_router(env={"WEBHOOK_HMAC_SECRET": SECRET, "MAX_BUFFERED_BYTES": str(cap),
                               "LOG_LEVEL": "info"})
    router.wait_ready()

    def signed_push(event_id):
        body = json.dumps(manifest_payload(fixtures_dir, repo, "v1", event_id)).encode()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return router.post("/webhook", body, {"X-Hub-Signature-256": "sha256=" + sig,
                                              "Content-Type": "application/json"})

    head = (f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256={'0' * 64}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BIG}\r\n\r\n").encode()
    socks = flood_open(router.port, head)
    replies, sent = {}, {}
    try:
        # Under the cap: 300 x 96 KiB held, and a real push still fits.
        trickle(socks, replies, sent, 96 * 1024, step=96 * 1024)
        assert not replies, list(replies.values())[:1]
        status, body = signed_push(f"c1-{uniq}")
        assert status == 202 and body["events"][0]["decision"] == "forwarded", body
        receiver.wait_for(f"/cap/{uniq}", 1)
        # Then each goes on towards its whole megabyte: past the cap, 503.
        trickle(socks, replies, sent, BIG - 1)
        # Replies to the last bytes sent may still be on their way; those
        # still held (under the cap) wait for the rest of their body.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(replies) < FLOOD - cap // BIG:
            for s in socks:
                if id(s) not in replies:
                    got = answered(s)
                    if got:
                        replies[id(s)] = got
            time.sleep(0.05)
        rss = rss_kib(router.proc.pid)
        peak = peak_rss_kib(router.proc.pid)
        busy = [d for d in replies.values() if d.startswith(b"HTTP/1.1 503 ")]
        print(f"\n{FLOOD} slow unauthenticated uploads of {BIG >> 10} KiB, cap {cap >> 20} MiB: "
              f"{len(busy)} got 503; router RSS {rss / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB")
        kinds = {}
        for d in replies.values():
            kinds[d[:12]] = kinds.get(d[:12], 0) + 1
        assert len(busy) >= FLOOD - cap // BIG, f"{len(busy)} of {FLOOD} got 503: {kinds}"
        assert all(b"Connection: close" in d and b"retry later" in d for d in busy)
        if not sanitized(binary):
            assert peak < 64 * 1024, f"router peak RSS {peak} KiB"
        router.wait_log("request refused: request bodies at the buffer cap")
    finally:
        for s in socks:
            s.close()
    # Their bytes are given back: a push goes through again.
    def pushed():
        status, _ = signed_push(f"c2-{uniq}")
        return status == 202
    wait_until(pushed, 10, 0.2, "a signed push accepted after the flood")
    receiver.wait_for(f"/cap/{uniq}", 2)
