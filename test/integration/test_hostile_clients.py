"""Many idle clients against the real binary: memory stays bounded, the
connection cap refuses cleanly, and the router keeps serving.

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
        return b"AddressSanitizer" in f.read() or os.environ.get("WR_VALGRIND") == "1"


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
