#!/usr/bin/env python3
"""A tag-list watch of a repository with many tags, and what it does to the
loop: /health latency while the router checks the list every second. Prints
numbers; not a test.

  bench/tag_list_stall.py [--tags 40000] [--seconds 8] [--binary PATH]

A loopback fake registry answers GET /v2/team/app/tags/list with --tags tags
in one page (and HEAD of any manifest with one digest). One labelled
container (on an isolated dockerd from the test harness) watches
team/app with tag glob "1.*" every second, so the list is what is watched.
Meanwhile /health is asked every 5 ms; printed: the slowest answer, the
99th percentile and how many took over 100 ms (issue 18 item 5: 1.75-2.7 s
stalls at each check with 40,000 tags before the fix)."""

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, free_port, stop_pid, wait_until  # noqa: E402

ROOT = os.path.join(HERE, "..")
BINARIES = [os.path.join(ROOT, "build", p, "webhook-router") for p in ("static", "release", "debug")]
DIGEST = "sha256:" + "ab" * 32


def fake_registry(ntags):
    body = json.dumps({"name": "team/app", "tags": [f"1.{i // 100}.{i % 100}" for i in range(ntags)]}).encode()
    lists = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/v2/team/app/tags/list"):
                lists[0] += 1
                self._answer(200, body)
            else:
                self._answer(404, b"{}")

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _answer(self, status, data):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, lists


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", type=int, default=40000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--binary", default=next((b for b in BINARIES if os.access(b, os.X_OK)), None))
    args = ap.parse_args()
    srv, lists = fake_registry(args.tags)
    reg = f"127.0.0.1:{srv.server_address[1]}"
    engine = Engine(insecure_registry=reg)
    router = None
    try:
        engine.start()
        engine.import_test_image()
        engine.docker("create", "--network", "none", "--label", f"webhook-router.image={reg}/team/app",
                      "--label", "webhook-router.url=http://127.0.0.1:9/x", "--label", "webhook-router.tag=1.*",
                      "--label", "webhook-router.poll=1s", "local/bb:1")
        port = free_port()
        env = dict(os.environ, DOCKER_HOST=engine.host, LOG_LEVEL="warn", INSECURE_REGISTRIES=reg,
                   LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(port))
        router = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: lists[0] >= 1, 20, 0.05, "the first tag list")
        lat = []
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            urllib.request.urlopen(base + "/health", timeout=30).read()
            lat.append(time.monotonic() - t0)
            time.sleep(0.005)
        lat.sort()
        print(f"binary {os.path.relpath(args.binary)}; {args.tags} tags, {lists[0]} tag lists fetched; "
              f"/health x{len(lat)}: max {lat[-1] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms, "
              f"over 100 ms: {sum(1 for x in lat if x > 0.1)}")
    finally:
        if router:
            stop_pid(router)
        engine.cleanup()
        srv.shutdown()


if __name__ == "__main__":
    main()
