#!/usr/bin/env python3
"""What notifications cost, on loopback. Prints numbers; not a test.

  bench/notify_cost.py [--pushes 200] [--burst 1000] [--binary PATH]

1. Instructions per push (valgrind callgrind, whole process): the router
   runs once with no push and once with --pushes pushes, per configuration;
   (Ir(pushes) - Ir(0)) / pushes is the cost of one push. Configurations:
   a route with a url; the same route with a notify target whose _ON does
   not take push/delivered (the decision only); the same with
   ON=push,delivered (two messages per push); and the noise path (pull
   events) without and with NOTIFY targets defined.
2. A burst: one webhook request with --burst pushes of distinct images to a
   notify-only route, so --burst messages to one target; the receiver is
   slow (20 ms) so they queue. Reports the deepest notification queue seen
   in /metrics and the router's peak RSS (VmHWM).
Starts its own isolated dockerd (for the labelled container), a Python
receiver and the router; stops them by PID."""

import argparse
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
from harness import Engine, Receiver, free_port, stop_pid, wait_until  # noqa: E402

ROOT = os.path.join(HERE, "..")
FIX = os.path.join(ROOT, "test", "fixtures", "distribution")


def payload(repos_tags, action="push"):
    with open(os.path.join(FIX, "04-push-manifest.json")) as f:
        doc = json.load(f)
    template = doc["events"][0]
    events = []
    for i, (repo, tag, eid) in enumerate(repos_tags):
        ev = json.loads(json.dumps(template))
        ev["id"] = eid
        ev["action"] = action
        ev["target"]["repository"] = repo
        ev["target"]["tag"] = tag
        ev["target"]["digest"] = "sha256:%064x" % (hash(eid) & (2**256 - 1))
        ev["request"]["host"] = "127.0.0.1:5000"
        events.append(ev)
    return json.dumps({"events": events})


def start(binary, port, env, callgrind=None):
    full = dict(os.environ, LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(port), LOG_LEVEL="warn", DEBOUNCE_MS="0")
    full.update(env)
    cmd = [binary]
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind}", binary]
    p = subprocess.Popen(cmd, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request
    wait_until(lambda: _get(port, "/ready") == 200, 60, 0.1, "router ready")
    return p


def _get(port, path):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status
    except Exception:
        return None


def post(port, body):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/webhook", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def ir_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def run_callgrind(binary, engine, rx, labels, env, pushes, action, expect_rx):
    tmp = tempfile.mkdtemp(prefix="wr-bench-cg-", dir="/tmp")
    cid = engine.docker("create", "--network", "none", *sum((["--label", l] for l in labels), []),
                        "local/bb:1").stdout.strip()
    try:
        totals = []
        for n in (0, pushes):
            before = len(rx.on("/hook"))
            chat_before = len(rx.on("/chat"))
            out = os.path.join(tmp, f"cg.{n}")
            port = free_port()
            p = start(binary, port, dict(env, DOCKER_HOST=engine.host), callgrind=out)
            for i in range(n):
                post(port, payload([("team/bench", "v1", f"b-{n}-{i}-{time.time()}")], action))
            wait_until(lambda: len(rx.on("/hook")) - before >= expect_rx * n, 120, 0.05, "deliveries")
            time.sleep(1.0)   # past the notifier's window
            if n:
                print(f"   ({len(rx.on('/chat')) - chat_before} messages for {n} pushes)", flush=True)
            p.send_signal(signal.SIGTERM)
            p.wait(120)
            totals.append(ir_total(out))
        return (totals[1] - totals[0]) / pushes
    finally:
        engine.docker("rm", "-f", cid, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=200)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--rows", default="0,1,2,3,4", help="which configurations (0-4), e.g. 0,1,0,1 to see the noise")
    ap.add_argument("--no-burst", action="store_true")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "webhook-router"))
    a = ap.parse_args()
    engine = Engine(insecure_registry="127.0.0.1:5000")
    rx = Receiver()
    rx.status = 204
    try:
        engine.start()
        engine.import_test_image()
        url = rx.url("/hook")
        chat = {"NOTIFY_CHAT_URL": "generic+" + rx.url("/chat")}
        base = ["webhook-router.image=team/bench", f"webhook-router.url={url}"]
        rows = [
            ("push, url only", base, {}, "push", 1),
            ("push, url + notify (default ON: nothing to tell)", base + ["webhook-router.notify=chat"], chat, "push", 1),
            ("push, url + notify ON=push,delivered (merged per window)", base + ["webhook-router.notify=chat"],
             dict(chat, NOTIFY_CHAT_ON="push,delivered"), "push", 1),
            ("noise (pull), no NOTIFY targets", base, {}, "pull", 0),
            ("noise (pull), NOTIFY targets + notify label", base + ["webhook-router.notify=chat"], chat, "pull", 0),
        ]
        results = {}
        for i in [int(x) for x in a.rows.split(",")]:
            name, labels, env, action, per = rows[i]
            ir = run_callgrind(a.binary, engine, rx, labels, env, a.pushes, action, per)
            results.setdefault(i, []).append(ir)
            print(f"{i} {name:55s} {ir:12.0f} Ir/push", flush=True)
        if 0 in results and 1 in results:
            print(f"notify decision overhead: {100 * (min(results[1]) / min(results[0]) - 1):+.2f} %")
        if 3 in results and 4 in results:
            print(f"noise path with targets:  {100 * (min(results[4]) / min(results[3]) - 1):+.2f} %")
        if a.no_burst:
            return

        # The burst.
        repos = [f"team/burst{i}" for i in range(a.burst)]
        cid = engine.docker("create", "--network", "none", "--label", "webhook-router.image=" + ",".join(repos),
                            "--label", "webhook-router.notify=chat", "local/bb:1").stdout.strip()
        rx.delay = 0.02
        port = free_port()
        before = len(rx.requests)
        p = start(a.binary, port, dict(chat, DOCKER_HOST=engine.host))
        t0 = time.monotonic()
        assert post(port, payload([(r, "v1", f"burst-{r}") for r in repos])) == 202
        deepest = 0
        import urllib.request
        while len(rx.requests) - before < a.burst and time.monotonic() - t0 < 300:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                m = re.search(rb"webhook_router_notify_queue_depth (\d+)", r.read())
                deepest = max(deepest, int(m.group(1)))
            time.sleep(0.05)
        took = time.monotonic() - t0
        with open(f"/proc/{p.pid}/status") as f:
            hwm = [l for l in f if l.startswith("VmHWM")][0].split()[1]
        print(f"burst: {len(rx.requests) - before} of {a.burst} messages delivered in {took:.1f} s, "
              f"deepest notification queue {deepest}, peak RSS {int(hwm) / 1024:.1f} MiB")
        stop_pid(p)
        engine.docker("rm", "-f", cid, check=False)
    finally:
        rx.close()
        engine.cleanup()


if __name__ == "__main__":
    main()
