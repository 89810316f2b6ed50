#!/usr/bin/env python3
"""The registry watcher at scale, on loopback. Prints numbers; not a test.

  bench/registry_watch.py [--watches 1000] [--interval 60] [--intervals 2] [--binary PATH]

One labelled container watches --watches repositories (tag v1) of a local
docker-registry at --interval seconds. Measured over --intervals intervals
after the first round of checks: the router's CPU (% of one core), RSS growth,
registry requests per interval (from /metrics) and the most TCP connections
open to the registry at once (sampled from /proc/net/tcp). Then a new digest
is pushed to one watched tag: the time until the forward arrives, against the
interval, and the router's own share (its "registry change" line to the
forward's arrival)."""

import argparse
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, Registry, free_port, push_image, push_variant, stop_pid, wait_until  # noqa: E402

ROOT = os.path.join(HERE, "..")
BINARIES = [os.path.join(ROOT, "build", p, "webhook-router") for p in ("static", "release")]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def connections_to(port):
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                parts = line.split()
                if int(parts[2].rsplit(":", 1)[1], 16) == port and parts[3] == "01":   # ESTABLISHED
                    n += 1
    return n


def registry_api(host, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://{host}{path}", data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status, dict(r.headers), r.read()


def replicate(host, src_repo, n):
    """n repositories repo0..repo<n-1> holding src_repo:v1, by blob mounts and a manifest PUT each."""
    mt = "application/vnd.docker.distribution.manifest.v2+json"
    _, hdrs, manifest = registry_api(host, "GET", f"/v2/{src_repo}/manifests/v1", headers={"Accept": mt})
    ctype = hdrs.get("Content-Type", mt)
    m = json.loads(manifest)
    blobs = [m["config"]["digest"]] + [layer["digest"] for layer in m["layers"]]
    names = []
    for i in range(n):
        repo = f"bench/r{i}"
        for b in blobs:
            registry_api(host, "POST", f"/v2/{repo}/blobs/uploads/?mount={b}&from={src_repo}")
        registry_api(host, "PUT", f"/v2/{repo}/manifests/v1", manifest, {"Content-Type": ctype})
        names.append(repo)
    return names


class Hits(http.server.BaseHTTPRequestHandler):
    times = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hits.times.append(time.monotonic())
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def metric(base, name, labels=""):
    try:
        text = urllib.request.urlopen(base + "/metrics").read().decode()
    except OSError:
        return -1.0   # not listening yet
    total = 0.0
    for m in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        if labels in (m.group(1) or ""):
            total += float(m.group(2))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watches", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--intervals", type=int, default=2)
    ap.add_argument("--binary", default=next((b for b in BINARIES if os.access(b, os.X_OK)), None))
    args = ap.parse_args()
    if not args.binary:
        sys.exit("build the static (or release) preset first")
    print(f"router binary: {os.path.relpath(args.binary)}; {args.watches} watches every {args.interval} s")
    d = tempfile.mkdtemp(prefix="wr-rwb-", dir="/tmp")
    engine = Engine(insecure_registry="127.0.0.1:1")
    reg, router, srv = None, None, None
    try:
        engine.start()
        engine.import_test_image()
        reg = Registry(free_port())
        push_image(engine, reg.host, "bench/src", "v1")
        t0 = time.monotonic()
        repos = replicate(reg.host, "bench/src", args.watches)
        print(f"{len(repos)} repositories made in {time.monotonic() - t0:.1f} s")

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hits)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        hook = f"http://127.0.0.1:{srv.server_address[1]}/hook/bench"
        image = ",".join(f"{reg.host}/{r}" for r in repos)
        engine.docker("create", "--network", "none", "--label", f"webhook-router.image={image}",
                      "--label", f"webhook-router.url={hook}", "--label", "webhook-router.tag=v1",
                      "--label", f"webhook-router.poll={args.interval}s", "local/bb:1")
        port = free_port()
        env = dict(os.environ, DOCKER_HOST=engine.host, LOG_LEVEL="info", INSECURE_REGISTRIES=reg.host,
                   LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(port), DEBOUNCE_MS="0")
        log_path = os.path.join(d, "router.log")
        router = subprocess.Popen([args.binary], env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: metric(base, "webhook_router_watches") == args.watches, 60, 0.2, "the watches")
        ok = lambda: metric(base, "webhook_router_registry_requests_total", 'outcome="ok"')   # noqa: E731
        wait_until(lambda: ok() >= args.watches, 120, 0.2, "the first round of checks")
        time.sleep(2)
        rss0, cpu0, req0, w0 = rss_mib(router.pid), cpu_seconds(router.pid), ok(), time.monotonic()
        most = 0
        window = args.interval * args.intervals
        while time.monotonic() - w0 < window:
            most = max(most, connections_to(reg.port))
            time.sleep(0.05)
        span = time.monotonic() - w0
        cpu = (cpu_seconds(router.pid) - cpu0) / span * 100
        requests = (ok() - req0) / span * args.interval
        errors = metric(base, "webhook_router_registry_requests_total") - ok()
        print(f"CPU {cpu:.2f} % of a core over {span:.0f} s; RSS {rss0:.1f} -> {rss_mib(router.pid):.1f} MiB "
              f"(growth {rss_mib(router.pid) - rss0:+.2f} MiB)")
        print(f"registry requests per interval {requests:.0f} (for {args.watches} watches); failed "
              f"{errors:.0f}; connections to the registry at most {most}")

        # A push moves one watched tag.
        hits0 = len(Hits.times)
        push_variant(engine, reg.host, repos[7], "v1", "bench-b")
        t_push = time.monotonic()
        wait_until(lambda: len(Hits.times) > hits0, args.interval * 1.2 + 10, 0.01, "the forward")
        took = Hits.times[hits0] - t_push
        print(f"push -> forward {took * 1000:.0f} ms (interval {args.interval * 1000} ms, jitter +-10 %)")
        lines = [json.loads(x) for x in open(log_path) if x.startswith("{")]
        change = [x for x in lines if x.get("msg") == "registry change"]
        fwd = [x for x in lines if x.get("msg") == "forwarded"]
        if change and fwd:
            def ms(x):
                return time.mktime(time.strptime(x["ts"][:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(x["ts"][20:23])
            print(f"the router's share: change found -> forwarded {ms(fwd[-1]) - ms(change[-1]):.0f} ms "
                  f"(forward round trip {fwd[-1].get('duration_ms')} ms)")
    finally:
        if router:
            stop_pid(router)
        if srv:
            srv.shutdown()
        if reg:
            reg.close()
        engine.cleanup()


if __name__ == "__main__":
    main()
