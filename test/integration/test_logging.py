"""A log consumer that stops reading (stdout a pipe nobody drains) must not
stop the router: /health keeps answering at once, what cannot be written is
held (bounded) or dropped by whole lines and counted, and once the consumer
reads again every line that comes out is whole JSON, with a warn line saying
how many are missing.

The router is started here with a pipe of our own instead of harness.Router
(whose reader thread drains stdout all the time)."""

import http.client
import json
import os
import select
import subprocess
import tempfile
import time

from harness import LATENCY_CHECKS, free_port, stop_pid, wait_until

DROPPED = "log lines dropped: the log consumer was not reading"


class PipeReader:
    """The read end of the router's stdout, read only when the test says so."""

    def __init__(self, fd):
        self.fd = fd
        self.data = b""

    def read_now(self, wait=0.0):
        """Everything readable now (after waiting up to `wait` s for the first
        byte); returns False at end of file."""
        deadline = time.monotonic() + wait
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], left)[0]:
                return True
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return False
            self.data += chunk
            wait = 0
            deadline = time.monotonic()

    def lines(self):
        return self.data.split(b"\n")


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def metric(conn, name):
    status, body = get(conn, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_stalled_stdout_does_not_stop_the_router(binary, tmp_path):
    port = free_port()
    r_fd, w_fd = os.pipe()
    env = dict(os.environ, LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(port), LOG_LEVEL="debug",
               DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock", DEBOUNCE_MS="0")
    stderr = tempfile.TemporaryFile(dir="/tmp")
    proc = subprocess.Popen([binary], env=env, stdout=w_fd, stderr=stderr, stdin=subprocess.DEVNULL)
    os.close(w_fd)
    out = PipeReader(r_fd)
    try:
        wait_until(lambda: out.read_now(0.1) is not None and b'"msg":"listening"' in out.data, 30, 0.01,
                   "the router to log 'listening'")
        # From here on nobody reads. Each push of an unrouted image logs a
        # line or more; with long names the pipe (64 KiB) and the router's
        # own bound (1 MiB) fill within a few thousand.
        hooks = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        health = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        name = "team/" + "x" * 400
        worst = 0.0
        for i in range(6000):
            body = json.dumps({"repository": f"{name}{i}", "tag": "v1", "id": f"stall-{i}"})
            hooks.request("POST", "/webhook", body, {"Content-Type": "application/json"})
            r = hooks.getresponse()
            r.read()
            assert r.status == 202
            if i % 500 == 0:
                t0 = time.monotonic()
                assert get(health, "/health")[0] == 200
                worst = max(worst, time.monotonic() - t0)
        t0 = time.monotonic()
        assert get(health, "/health")[0] == 200
        worst = max(worst, time.monotonic() - t0)
        dropped = metric(health, "webhook_router_log_lines_dropped_total")
        print(f"\nslowest /health while stdout was stalled: {worst * 1000:.1f} ms; {dropped:.0f} lines dropped")
        if LATENCY_CHECKS:
            assert worst < 0.1, f"/health took {worst * 1000:.0f} ms with stdout stalled"
        assert dropped > 0

        # The consumer reads again: everything waiting comes out, then the
        # warn line, without any new request to wake the router up.
        def recovered():
            out.read_now(0.2)
            return DROPPED.encode() in out.data
        wait_until(recovered, 10, 0, "the dropped-lines warn line")
        hooks.request("POST", "/webhook", json.dumps({"repository": "team/after", "tag": "v1"}),
                      {"Content-Type": "application/json"})
        assert hooks.getresponse().status == 202
        wait_until(lambda: out.read_now(0.2) and b"team/after" in out.data, 10, 0, "a line after recovery")

        parsed = []
        for raw in out.lines()[:-1]:
            try:
                parsed.append(json.loads(raw))
            except ValueError:
                raise AssertionError(f"a cut or garbled log line: {raw[:120]!r}") from None
        assert out.data.endswith(b"\n")
        warns = [l for l in parsed if l["msg"] == DROPPED]
        assert all(l["level"] == "warn" for l in warns)
        assert sum(l["dropped"] for l in warns) == dropped
        # In order: the pushes that were logged appear in the order made.
        seen = [int(l["repository"][len(name):]) for l in parsed
                if l.get("msg") == "push without route" and l["repository"].startswith(name)]
        assert seen == sorted(seen) and len(seen) > 0
        assert metric(health, "webhook_router_log_lines_dropped_total") == dropped
        hooks.close()
        health.close()
    finally:
        proc.send_signal(15)
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            out.read_now(0.1)   # keep reading so the last lines are not what holds it
        code = stop_pid(proc, timeout=5)
        os.close(r_fd)
        stderr.seek(0)
        err = stderr.read().decode(errors="replace")
    assert code == 0, f"router exited {code}; stderr:\n{err[-3000:]}"
    for marker in ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:"):
        assert marker not in err, err[-6000:]
