#!/usr/bin/env python3
"""Sync and resync time, and router memory, with N labelled containers on one
engine (default 2000). Prints numbers; not a test.

  bench/resync.py [--containers 2000]

Starts its own isolated dockerd and the static (else the release) build of the
router; stops both by PID."""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, Router, free_port  # noqa: E402

# The static build (the binary the image ships) when there is one, else the release build.
BINARY = next((b for b in (os.path.join(HERE, "..", "build", p, "webhook-router") for p in ("static", "release"))
               if os.access(b, os.X_OK)), os.path.join(HERE, "..", "build", "release", "webhook-router"))


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=2000)
    args = ap.parse_args()
    engine = Engine(insecure_registry="127.0.0.1:1")
    router = None
    try:
        engine.start()
        engine.import_test_image()
        t0 = time.monotonic()

        def create(i):
            engine.docker("create", "--network", "none", "--label", f"webhook-router.image=team/app{i % 500}",
                          "--label", f"webhook-router.url=http://127.0.0.1:9/hook/{i}", "local/bb:1")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(args.containers)))
        print(f"created {args.containers} labelled containers in {time.monotonic() - t0:.0f} s")
        # The engine's own share of a sync: the list the router asks for, read raw.
        import socket
        for _ in range(2):
            t1 = time.monotonic()
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(engine.sock)
                s.sendall(b"GET /containers/json?all=1 HTTP/1.0\r\nHost: docker\r\n\r\n")
                raw = b"".join(iter(lambda: s.recv(1 << 16), b""))
            print(f"GET /containers/json?all=1 by itself: {(time.monotonic() - t1) * 1000:.0f} ms, "
                  f"{len(raw) / 1e6:.1f} MB")
        router = Router(BINARY, free_port(), {"DOCKER_HOST": engine.host, "CACHE_TTL_SECS": "3",
                                              "LOG_LEVEL": "debug"})
        synced = router.wait_log("docker synced", timeout=120)[0]
        print(f"first sync: {synced['duration_ms']} ms for {synced['containers']} containers, "
              f"{synced['routes']} routes; of which the list request, sent to last byte: {synced.get('list_ms')} ms")
        resyncs = router.wait_log("resync: no change", n=3, timeout=60)
        print("background resyncs: " + ", ".join(f"{l['duration_ms']} ms (list {l.get('list_ms')})" for l in resyncs))
        print(f"router RSS now: {rss(router.proc.pid, 'VmRSS'):.1f} MiB, peak: {rss(router.proc.pid, 'VmHWM'):.1f} MiB")
        status, body = router.get("/routes")
        print(f"/routes: {len(json.dumps(body))} bytes, {body['count']} routes")
    finally:
        if router:
            router.stop()
        engine.cleanup()


if __name__ == "__main__":
    main()
