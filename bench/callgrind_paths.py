#!/usr/bin/env python3
"""Instructions per request on the noise and push paths, counted by callgrind. Not a test.

  bench/callgrind_paths.py [--binary PATH] [--requests 2000]

Runs the router (release build by default) under `valgrind --tool=callgrind`
three times against a real engine with one labelled container and a local
receiver: with no requests, with N pull notifications (noise, ignored) and
with N matching manifest pushes (each a unique event id and a unique digest,
so each one is forwarded: push). Every request is a keep-alive POST on one
connection, sent after /ready. Prints the instructions each run executed
and, per request, (run - idle run) / N. Counts, not seconds: the same binary
and inputs give the same figures within a fraction of a percent, whatever
else the machine does, so two builds can be compared (--binary)."""

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, Receiver, free_port, stop_pid, wait_until  # noqa: E402

ROOT = os.path.join(HERE, "..")
FIX = os.path.join(ROOT, "test", "fixtures", "distribution")


def bodies(kind, n):
    name = "01-pull-blob.json" if kind == "noise" else "04-push-manifest.json"
    with open(os.path.join(FIX, name)) as f:
        doc = json.load(f)
    for i in range(n):
        ev = doc["events"][0]
        if kind == "push":
            ev["id"] = f"bench-{i}"
            ev["target"]["digest"] = "sha256:%064x" % (i + 1)
        yield json.dumps(doc).encode()


def one_run(binary, engine, kind, n, d):
    port = free_port()
    out = os.path.join(d, f"callgrind.{kind}.{n}")
    # LD_BIND_NOW: a dynamic build binds every symbol at start (in the idle
    # run too), not at its first call, which would count ~1k instructions
    # of dynamic linking per request in a 2,000-request run.
    env = dict(os.environ, DOCKER_HOST=engine.host, DEBOUNCE_MS="0", LOG_LEVEL="info", LD_BIND_NOW="1",
               LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(port), FORWARD_QUEUE_MAX="100000")
    log = open(os.path.join(d, f"router.{kind}.log"), "wb")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/ready")
                ok = c.getresponse().status == 200
                c.close()
                return ok
            except OSError:
                return False
        wait_until(ready, 120, 0.2, "router ready")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in (bodies(kind, n) if n else ()):
            c.request("POST", "/webhook", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 202, r.status
        c.close()
        if kind == "push" and n:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def delivered():
                c.request("GET", "/metrics")
                text = c.getresponse().read().decode()
                return sum(float(v) for v in re.findall(
                    r'^webhook_router_forwards_total\{outcome="delivered"[^}]*\} (\S+)$', text, re.M)) >= n
            wait_until(delivered, 300, 0.5, "every push delivered")
            c.close()
    finally:
        stop_pid(p, timeout=120)
        log.close()
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no callgrind summary in " + out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "webhook-router"))
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit("build the release preset first (or give --binary)")
    d = tempfile.mkdtemp(prefix="wr-cg-", dir="/tmp")
    engine = Engine(insecure_registry="127.0.0.1:1")
    recv = Receiver()
    try:
        engine.start()
        engine.import_test_image()
        engine.docker("create", "--network", "none", "--label", "webhook-router.image=team/myapp",
                      "--label", f"webhook-router.url={recv.url('/hook/bench')}", "local/bb:1")
        n = args.requests
        idle = one_run(args.binary, engine, "idle", 0, d)
        noise = one_run(args.binary, engine, "noise", n, d)
        push = one_run(args.binary, engine, "push", n, d)
        print(f"binary: {os.path.relpath(args.binary)}  requests per run: {n}")
        print(f"{'run':<8}{'instructions':>16}{'per request':>14}")
        print(f"{'idle':<8}{idle:>16,}{'':>14}")
        print(f"{'noise':<8}{noise:>16,}{(noise - idle) / n:>14,.0f}")
        print(f"{'push':<8}{push:>16,}{(push - idle) / n:>14,.0f}")
    finally:
        recv.close()
        engine.cleanup()


if __name__ == "__main__":
    main()
