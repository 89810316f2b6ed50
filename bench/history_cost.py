#!/usr/bin/env python3
"""What the delivery history costs, in one run. Prints a table; not a test.

  bench/history_cost.py --base OLD_BINARY [--binary NEW_BINARY] [--n 2000]

Instructions (valgrind --tool=callgrind, whole process): the router starts,
syncs one labelled container, gets N webhook requests one after the other,
and is stopped; the same with 0 requests is subtracted, so what is left is
the request path (for pushes: the webhook, the plan, the forward to a local
receiver and its outcome). Workloads from test/fixtures/distribution:
  push   a matching manifest push, a unique event id (and digest) each, DEBOUNCE_MS=0
  noise  a pull notification (ignored)
Then RSS (VmRSS, no valgrind) of the new binary after HISTORY_SIZE=1000 pushes
filled the history."""

import argparse
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, Receiver, free_port, wait_until  # noqa: E402

FIX = os.path.join(HERE, "..", "test", "fixtures", "distribution")


def bodies(kind, n):
    name = "04-push-manifest.json" if kind == "push" else "01-pull-blob.json"
    with open(os.path.join(FIX, name)) as f:
        doc = json.load(f)
    for i in range(n):
        ev = doc["events"][0]
        if kind == "push":
            ev["id"] = f"bench-{i}"
            ev["target"]["repository"] = "team/myapp"
            ev["target"]["digest"] = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
        yield json.dumps(doc)


def run(binary, engine, recv, kind, n, d, callgrind=True, env_extra=None):
    port = free_port()
    env = dict(os.environ, DOCKER_HOST=engine.host, DEBOUNCE_MS="0", LOG_LEVEL="info", LISTEN_ADDR="127.0.0.1",
               LISTEN_PORT=str(port), FORWARD_QUEUE_MAX="1000000", **(env_extra or {}))
    out = os.path.join(d, f"cg.{os.getpid()}.{time.monotonic_ns()}")
    cmd = (["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] if callgrind else []) + [binary]
    log = open(os.path.join(d, "router.log"), "ab")
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/ready")
                return c.getresponse().status == 200
            except OSError:
                return False
        wait_until(ready, 120, 0.2, "router ready")
        before = len(recv.on("/hook/bench"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in bodies(kind, n):
            c.request("POST", "/webhook", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status == 202, r.status
        if kind == "push":
            wait_until(lambda: len(recv.on("/hook/bench")) - before >= n, 300, 0.2, "all forwards delivered")
        rss = None
        if not callgrind:
            time.sleep(0.5)
            with open(f"/proc/{p.pid}/status") as f:
                rss = int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1)) / 1024
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(120)
    if not callgrind:
        return rss
    with open(out) as f:
        m = re.search(r"^(?:summary|totals):\s*(\d+)", f.read(), re.M)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the router binary before the change")
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "release", "webhook-router"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rss-only", action="store_true")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="wr-hc-", dir="/tmp")
    engine = Engine(insecure_registry="127.0.0.1:1")
    recv = Receiver()
    try:
        engine.start()
        engine.import_test_image()
        engine.docker("create", "--network", "none", "--label", "webhook-router.image=127.0.0.1:5000/team/myapp",
                      "--label", f"webhook-router.url={recv.url('/hook/bench')}", "local/bb:1")
        print(f"{'binary':8} {'workload':8} {'Ir/request':>12}")
        res = {}
        for label, binary in (("base", args.base), ("new", args.binary)):
            if args.rss_only:
                break
            idle = run(binary, engine, recv, "noise", 0, d)
            for kind in ("push", "noise"):
                total = run(binary, engine, recv, kind, args.n, d)
                res[(label, kind)] = (total - idle) / args.n
                print(f"{label:8} {kind:8} {res[(label, kind)]:12.0f}")
        for kind in ("push", "noise") if not args.rss_only else ():
            b, n = res[("base", kind)], res[("new", kind)]
            print(f"{kind}: {100 * (n - b) / b:+.2f}% instructions per request")
        for label, binary in (("base", args.base), ("new", args.binary)):
            rss = run(binary, engine, recv, "push", 1000, d, callgrind=False, env_extra={"HISTORY_SIZE": "1000"})
            print(f"{label}: RSS after 1000 pushes (new: history full, HISTORY_SIZE=1000): {rss:.1f} MiB")
    finally:
        recv.close()
        engine.cleanup()


if __name__ == "__main__":
    main()
