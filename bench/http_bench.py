#!/usr/bin/env python3
"""The router against a ceiling, on loopback, in one run. Prints a table; not a test.

  bench/http_bench.py [--seconds 10] [--connections 64] [--binary PATH]

The router measured is the static build (cmake --preset static), the binary
the image ships, when it exists; otherwise the release build.

Workloads, built from test/fixtures/distribution:
  noise  a pull notification (ignored), the bulk of what a busy registry sends
  push   a matching manifest push with a unique event id AND a unique digest
         per request (the router redeploys a route once per digest: a
         repeated digest would measure the dedupe path, not forwarding) and
         DEBOUNCE_MS=0, forwarded to a local nginx receiver (every one delivered)
References, nginx (Debian nginx-light), one worker:
  noise  `return 202;` on the same path (reads nothing)
  push   `proxy_pass` to the same receiver over keep-alive upstream
         connections: the cost of proxying alone, no parsing, no routing
Server (router or nginx) pinned to CPU 0, wrk (and the push receiver) to CPU 1.
--rounds rounds, interleaved (reference, router, reference, router...);
the table gives each figure's median over the rounds.
CPU per request = server CPU seconds (utime+stime from /proc/<pid>/stat) / requests.
Peak RSS = the server's VmHWM after the run.
With --explain, two more push rows in the same rounds, to show where the
router's cost over the proxy goes: nginx `proxy_pass` with its access log
on (a line per request, as the router logs), and the router with
LOG_LEVEL=warn (its two info lines per push, "push matched" and
"forwarded", off).
Also: event-to-route latency (docker create of a labelled container -> first
forward for it), p50/p99 over 30 containers."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, free_port, stop_pid, wait_until  # noqa: E402

ROOT = os.path.join(HERE, "..")
BINARIES = [os.path.join(ROOT, "build", p, "webhook-router") for p in ("static", "release")]
FIX = os.path.join(ROOT, "test", "fixtures", "distribution")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def nginx(d, name, port, body_status, cpu, upstream_port=None, access_log=False):
    """One nginx worker on CPU cpu: `return body_status`, or with upstream_port a
    keep-alive proxy_pass to 127.0.0.1:upstream_port. Returns (master, worker pid)."""
    conf = os.path.join(d, f"{name}.conf")
    os.makedirs(os.path.join(d, name), exist_ok=True)
    if upstream_port:
        upstream = f"upstream receiver {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}"
        action = 'proxy_pass http://receiver; proxy_http_version 1.1; proxy_set_header Connection "";'
    else:
        upstream, action = "", f"return {body_status};"
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {d}/{name}.pid;
error_log {d}/{name}-error.log;
events {{ worker_connections 8192; }}
http {{
  access_log {os.path.join(d, name + "-access.log") if access_log else "off"};
  keepalive_requests 10000000;
  client_body_temp_path {d}/{name};
  {upstream}
  server {{ listen 127.0.0.1:{port}; location / {{ {action} }} }}
}}
""")
    p = subprocess.Popen(["taskset", "-c", str(cpu), "/usr/sbin/nginx", "-c", conf, "-g", "daemon off;"],
                         stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    # The worker does the work: measure its CPU, not the master's.
    workers = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    return p, int(workers[0])


def lua_script(d, name, body, unique_ids):
    path = os.path.join(d, f"{name}.lua")
    with open(path, "w") as f:
        f.write("local n = 0\nlocal salt = tostring(math.random(1, 1000000000))\n")
        f.write(f"local tmpl = [[{body}]]\n")
        f.write("request = function()\n  n = n + 1\n")
        # A unique event id and a unique digest per push (64 hex digits).
        f.write("  local b = tmpl:gsub('__ID__', salt .. '-' .. n):gsub('__DIGEST__', "
                "string.format('%08x%056x', tonumber(salt), n))\n" if unique_ids else "  local b = tmpl\n")
        f.write("  return wrk.format('POST', '/webhook', {['Content-Type'] = 'application/json'}, b)\nend\n")
    return path


def wrk(url, script, seconds, connections):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", script, url], capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"requests": total, "non2xx": non2xx, "rps": rps, "p50_ms": pct(50), "p99_ms": pct(99)}


def run(server_pid, url, script, args):
    c0 = cpu_seconds(server_pid)
    r = wrk(url, script, args.seconds, args.connections)
    r["cpu_us_per_req"] = (cpu_seconds(server_pid) - c0) / max(r["requests"], 1) * 1e6
    return r


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=next((b for b in BINARIES if os.access(b, os.X_OK)), None))
    ap.add_argument("--perf", metavar="FILE", help="record the router's first push run with perf into FILE")
    ap.add_argument("--explain", action="store_true",
                    help="also nginx proxy_pass with its access log, and the router with LOG_LEVEL=warn (push)")
    args = ap.parse_args()
    if not args.binary or not os.access(args.binary, os.X_OK):
        sys.exit("build the static (or release) preset first")
    print(f"router binary: {os.path.relpath(args.binary)}")
    d = tempfile.mkdtemp(prefix="wr-hb-", dir="/tmp")
    engine = Engine(insecure_registry="127.0.0.1:1")
    procs, router, quiet = [], None, None
    try:
        engine.start()
        engine.import_test_image()
        recv_port, ceil_port, proxy_port, router_port = free_port(), free_port(), free_port(), free_port()
        recv, _ = nginx(d, "receiver", recv_port, 204, 1)
        ceiling, ceiling_worker = nginx(d, "ceiling", ceil_port, 202, 0)
        proxy, proxy_worker = nginx(d, "proxy", proxy_port, 0, 0, upstream_port=recv_port)
        procs += [recv, ceiling, proxy]
        if args.explain:
            logproxy_port, quiet_port = free_port(), free_port()
            logproxy, logproxy_worker = nginx(d, "logproxy", logproxy_port, 0, 0, upstream_port=recv_port,
                                              access_log=True)
            procs.append(logproxy)
        engine.docker("create", "--network", "none", "--label", "webhook-router.image=team/myapp",
                      "--label", f"webhook-router.url=http://127.0.0.1:{recv_port}/hook/bench", "local/bb:1")
        env = dict(os.environ, DOCKER_HOST=engine.host, DEBOUNCE_MS="0", LOG_LEVEL="info",
                   FORWARD_QUEUE_MAX="1000000", LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(router_port))
        # Logs go to a file: a reader in this process must not throttle the router.
        log = open(os.path.join(d, "router.log"), "wb")
        router = subprocess.Popen(["taskset", "-c", "0", args.binary], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{router_port}"
        if args.explain:
            quiet_env = dict(env, LOG_LEVEL="warn", LISTEN_PORT=str(quiet_port))
            quiet = subprocess.Popen(["taskset", "-c", "0", args.binary], env=quiet_env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            quiet_base = f"http://127.0.0.1:{quiet_port}"

        def ready(url=base):
            try:
                return urllib.request.urlopen(url + "/ready").status == 200
            except OSError:
                return False
        wait_until(ready, 30, 0.1, "router ready")
        if quiet:
            wait_until(lambda: ready(quiet_base), 30, 0.1, "quiet router ready")

        def delivered_total(url=base):
            text = urllib.request.urlopen(url + "/metrics").read().decode()
            return sum(float(v) for v in re.findall(r'^webhook_router_forwards_total\{outcome="delivered"[^}]*\} (\S+)$',
                                                   text, re.M))
        time.sleep(1)
        idle_rss = peak_rss_mib(router.pid)

        with open(os.path.join(FIX, "01-pull-blob.json")) as f:
            noise = json.dumps(json.load(f))
        with open(os.path.join(FIX, "04-push-manifest.json")) as f:
            doc = json.load(f)
        doc["events"][0]["id"] = "__ID__"
        doc["events"][0]["target"]["digest"] = "sha256:__DIGEST__"
        push = json.dumps(doc)
        noise_lua, push_lua = lua_script(d, "noise", noise, False), lua_script(d, "push", push, True)

        results = {k: [] for k in ("ref-noise", "router-noise", "ref-push", "router-push", "logref-push",
                                   "quiet-push")}
        accepted = delivered = 0
        depth = [0]
        for rnd in range(args.rounds):
            results["ref-noise"].append(run(ceiling_worker, f"http://127.0.0.1:{ceil_port}/webhook", noise_lua, args))
            results["router-noise"].append(run(router.pid, f"{base}/webhook", noise_lua, args))
            results["ref-push"].append(run(proxy_worker, f"http://127.0.0.1:{proxy_port}/webhook", push_lua, args))
            before = delivered_total()
            # The forward queue's depth while pushes pour in (sampled, from /metrics).
            sampling = [True]

            def sample():
                while sampling[0]:
                    text = urllib.request.urlopen(base + "/metrics").read().decode()
                    m = re.search(r"^webhook_router_forward_queue_depth (\S+)$", text, re.M)
                    depth[0] = max(depth[0], int(float(m.group(1))) if m else 0)
                    time.sleep(0.1)
            sampler = threading.Thread(target=sample)
            sampler.start()
            perf = subprocess.Popen(["perf", "record", "-g", "-p", str(router.pid), "-o", args.perf],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
                if args.perf and rnd == 0 else None
            r_push = run(router.pid, f"{base}/webhook", push_lua, args)
            if perf:
                perf.send_signal(2)
                perf.wait(30)
            sampling[0] = False
            sampler.join()
            results["router-push"].append(r_push)
            ok = r_push["requests"] - r_push["non2xx"]
            wait_until(lambda: delivered_total() - before >= ok, 120, 0.2, "every push delivered")
            accepted += ok
            delivered += int(delivered_total() - before)
            if args.explain:
                results["logref-push"].append(run(logproxy_worker, f"http://127.0.0.1:{logproxy_port}/webhook",
                                                  push_lua, args))
                before = delivered_total(quiet_base)
                r_quiet = run(quiet.pid, f"{quiet_base}/webhook", push_lua, args)
                results["quiet-push"].append(r_quiet)
                ok = r_quiet["requests"] - r_quiet["non2xx"]
                wait_until(lambda: delivered_total(quiet_base) - before >= ok, 120, 0.2, "every push delivered")
                accepted += ok
                delivered += int(delivered_total(quiet_base) - before)
        peak = peak_rss_mib(router.pid)
        ref_peak = max(peak_rss_mib(ceiling_worker), peak_rss_mib(proxy_worker))

        # Event-to-route latency: docker create -> first forward for it.
        lat = []
        for i in range(30):
            repo = f"team/lat{i}-{os.getpid()}"
            engine.docker("create", "--network", "none", "--label", f"webhook-router.image={repo}",
                          "--label", f"webhook-router.url=http://127.0.0.1:{recv_port}/hook/{i}", "local/bb:1")
            t_created = time.monotonic()
            body = push.replace("team/myapp", repo)
            n = 0
            while True:
                n += 1
                req = urllib.request.Request(f"http://127.0.0.1:{router_port}/webhook",
                                             data=body.replace("__ID__", f"lat-{i}-{n}")
                                             .replace("__DIGEST__", "%064x" % (i * 1000 + n)).encode(),
                                             method="POST")
                with urllib.request.urlopen(req) as resp:
                    if json.load(resp)["events"][0]["decision"] == "forwarded":
                        break
            lat.append((time.monotonic() - t_created) * 1000)
        lat.sort()

        def med(key, field):
            return median([r[field] for r in results[key]])
        names = {"ref-noise": ("nginx return 202", "noise"), "router-noise": ("webhook-router", "noise"),
                 "ref-push": ("nginx proxy_pass", "push"), "router-push": ("webhook-router", "push")}
        if args.explain:
            names.update({"logref-push": ("nginx proxy+log", "push"), "quiet-push": ("router log=warn", "push")})
        print(f"\nmedians of {args.rounds} interleaved rounds, {args.seconds} s each, {args.connections} connections")
        print(f"{'server':18} {'workload':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'non-2xx':>8}")
        for key, (name, wl) in names.items():
            print(f"{name:18} {wl:8} {med(key, 'rps'):9.0f} {med(key, 'p50_ms'):8.3f} {med(key, 'p99_ms'):8.3f} "
                  f"{med(key, 'cpu_us_per_req'):11.1f} {int(med(key, 'non2xx')):8}")
        print(f"\nnoise: router/nginx req/s = {med('router-noise', 'rps') / med('ref-noise', 'rps'):.2f}, "
              f"CPU per request router/nginx = "
              f"{med('router-noise', 'cpu_us_per_req') / med('ref-noise', 'cpu_us_per_req'):.2f}")
        print(f"push:  router/proxy req/s = {med('router-push', 'rps') / med('ref-push', 'rps'):.2f}, "
              f"CPU per push router/proxy = {med('router-push', 'cpu_us_per_req') / med('ref-push', 'cpu_us_per_req'):.2f}, "
              f"p99 router {med('router-push', 'p99_ms'):.2f} ms vs proxy {med('ref-push', 'p99_ms'):.2f} ms")
        if args.explain:
            print(f"push:  nginx with access log / without = "
                  f"{med('logref-push', 'cpu_us_per_req') / med('ref-push', 'cpu_us_per_req'):.2f}; "
                  f"router LOG_LEVEL=warn / proxy = "
                  f"{med('quiet-push', 'cpu_us_per_req') / med('ref-push', 'cpu_us_per_req'):.2f}")
        print(f"push:  accepted {accepted}, delivered {delivered} ({'all' if delivered >= accepted else 'NOT all'}); "
              f"forward queue depth at most {depth[0]} (sampled)")
        print(f"router RSS: idle {idle_rss:.1f} MiB, peak {peak:.1f} MiB; nginx worker peak {ref_peak:.1f} MiB")
        print(f"event-to-route (docker create returned -> forwarded), 30 containers: "
              f"p50 {lat[len(lat) // 2]:.1f} ms, p99 {lat[-1]:.1f} ms")
    finally:
        for r in (router, quiet):
            if r:
                stop_pid(r)
        for p in procs:
            stop_pid(p, timeout=10)
        engine.cleanup()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
