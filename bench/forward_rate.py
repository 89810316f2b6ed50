#!/usr/bin/env python3
"""How many forwards per second one router sustains to one keep-alive HTTP
receiver on loopback, and the memory it uses doing it. Prints numbers; it is
a benchmark, not a test.

  bench/forward_rate.py [--seconds 10] [--connections 32]

Needs: a release build (cmake --preset release && cmake --build --preset release),
and Debian's wrk and nginx-light (installed here if missing). Starts its own
isolated dockerd (for the labelled container that makes the route), nginx as the
receiver (`return 204`), and the router; stops all of them by PID. The router is
pinned to CPU 0, wrk and nginx to CPU 1."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Engine, free_port, stop_pid, wait_until  # noqa: E402

ROOT = os.path.join(HERE, "..")
BINARY = os.path.join(ROOT, "build", "release", "webhook-router")
FIXTURE = os.path.join(ROOT, "test", "fixtures", "distribution", "04-push-manifest.json")


def ensure_tools():
    missing = [p for p, b in (("wrk", "/usr/bin/wrk"), ("nginx-light", "/usr/sbin/nginx")) if not os.path.exists(b)]
    if missing:
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def start_nginx(d, port):
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path {d}/body;
  server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}
}}
""")
    p = subprocess.Popen(["taskset", "-c", "1", "/usr/sbin/nginx", "-c", conf, "-g", "daemon off;"],
                         stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    if not os.access(BINARY, os.X_OK):
        sys.exit("build the release preset first: cmake --preset release && cmake --build --preset release")
    ensure_tools()
    d = tempfile.mkdtemp(prefix="wr-bench-", dir="/tmp")
    nginx_port, router_port = free_port(), free_port()
    engine = Engine(insecure_registry="127.0.0.1:1")
    nginx = router = None
    try:
        engine.start()
        engine.import_test_image()
        engine.docker("create", "--network", "none", "--label", "webhook-router.image=team/myapp",
                      "--label", f"webhook-router.url=http://127.0.0.1:{nginx_port}/hook/bench", "local/bb:1")
        nginx = start_nginx(d, nginx_port)
        log_path = os.path.join(d, "router.log")
        log = open(log_path, "wb")
        env = dict(os.environ, LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(router_port), DOCKER_HOST=engine.host,
                   DEBOUNCE_MS="0", LOG_LEVEL="info", FORWARD_QUEUE_MAX="100000")
        router = subprocess.Popen(["taskset", "-c", "0", BINARY], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)

        def ready():
            try:
                import http.client
                c = http.client.HTTPConnection("127.0.0.1", router_port, timeout=1)
                c.request("GET", "/ready")
                return c.getresponse().status == 200
            except OSError:
                return False
        wait_until(ready, 30, 0.1, "router ready")
        idle_rss = rss_kib(router.pid, "VmRSS")

        with open(FIXTURE) as f:
            tmpl = json.dumps(json.load(f)).replace("3fa8df3b-a583-464b-8936-131347067308", "__ID__")
        lua = os.path.join(d, "push.lua")
        with open(lua, "w") as f:
            f.write("local n = 0\nlocal salt = tostring(math.random(1, 1000000000))\n"
                    f"local tmpl = [[{tmpl}]]\n"
                    "request = function()\n  n = n + 1\n"
                    "  local body = tmpl:gsub('__ID__', salt .. '-' .. n)\n"
                    "  return wrk.format('POST', '/webhook', {['Content-Type'] = 'application/json'}, body)\nend\n")
        t0 = time.monotonic()
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s",
                              "-s", lua, f"http://127.0.0.1:{router_port}/webhook"],
                             capture_output=True, text=True, check=True).stdout
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        accepted = total - non2xx

        def forwarded():
            log.flush()
            with open(log_path, "rb") as f:
                return f.read().count(b'"msg":"forwarded"')
        wait_until(lambda: forwarded() >= accepted, 120, 0.2, "every accepted event forwarded")
        elapsed = time.monotonic() - t0
        peak = rss_kib(router.pid, "VmHWM")
        with open(log_path, "rb") as f:
            failed = f.read().count(b'"msg":"forward failed"')
        print(f"webhooks sent: {total}  accepted (202): {accepted}  refused (503 etc): {non2xx}")
        print(f"forwards delivered: {forwarded()}  failed: {failed}")
        print(f"forwards/s (accepted / (load + drain) time): {accepted / elapsed:.0f}  over {elapsed:.1f} s")
        print(f"router RSS idle: {idle_rss / 1024:.1f} MiB  peak: {peak / 1024:.1f} MiB")
        print("wrk:\n" + out)
    finally:
        if router:
            stop_pid(router)
        if nginx:
            stop_pid(nginx, timeout=10)
        engine.cleanup()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
