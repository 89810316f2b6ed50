"""The deployable image: the repository's Dockerfile built on the isolated
engine (base made with debootstrap, nothing pulled), run with the engine's
socket mounted, forwarding a real push. Non-root, healthy, and its size."""

import os
import subprocess
import tempfile
import time

import pytest

from harness import VALGRIND, wait_until

# The image holds the static binary and runs it in a container: nothing
# there for valgrind to trace.
pytestmark = pytest.mark.skipif(VALGRIND, reason="the image's binary runs in a container, not under valgrind")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
# Made once per machine and kept: debootstrap downloads ~40 MB of Debian packages.
BASE_CACHE = "/var/cache/webhook-router-test/bookworm-minbase.tar"
MIRROR = "http://deb.debian.org/debian"


def base_tarball():
    if os.path.exists(BASE_CACHE):
        return BASE_CACHE
    os.makedirs(os.path.dirname(BASE_CACHE), exist_ok=True)
    root = tempfile.mkdtemp(prefix="wr-debootstrap-", dir="/tmp")
    try:
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root, MIRROR], check=True,
                       capture_output=True, timeout=1200)
        tmp = BASE_CACHE + ".part"
        subprocess.run(["tar", "-C", root, "-cf", tmp, "."], check=True)
        os.rename(tmp, BASE_CACHE)
    finally:
        subprocess.run(["rm", "-rf", root])
    return BASE_CACHE


@pytest.fixture(scope="module")
def image(engine):
    if engine.docker("image", "inspect", "debian:bookworm-slim", check=False).returncode != 0:
        engine.docker("import", base_tarball(), "debian:bookworm-slim", timeout=600)
    t0 = time.monotonic()
    r = engine.docker("build", "--network", "host", "-t", "webhook-router:test", ROOT, check=False, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    size = int(engine.docker("image", "inspect", "-f", "{{.Size}}", "webhook-router:test").stdout)
    print(f"\nimage built in {time.monotonic() - t0:.0f} s; image size {size / 1e6:.2f} MB")
    return "webhook-router:test"


def test_image_forwards_a_real_push(engine, registry, router_port, receiver, containers, image, uniq):
    hook = f"/img/{uniq}"
    containers("team/imgapp", receiver.url(hook))
    gid = os.stat(engine.sock).st_gid     # the socket's group, given to the non-root user
    name = f"wr-{uniq}"
    engine.docker("run", "-d", "--name", name, "--network", "host",
                  "-v", f"{engine.sock}:/var/run/docker.sock", "--group-add", str(gid),
                  "-e", "LISTEN_ADDR=127.0.0.1", "-e", f"LISTEN_PORT={router_port}", "-e", "DEBOUNCE_MS=0",
                  "--health-interval", "1s", image)
    try:
        def ready():
            r = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{router_port}/ready"], capture_output=True)
            return r.returncode == 0
        wait_until(ready, 30, 0.2, "containerised router ready")
        ref = f"127.0.0.1:{registry.port}/team/imgapp:{uniq}"
        engine.docker("tag", "local/bb:1", ref)
        engine.docker("push", ref)
        got = receiver.wait_for(hook, 1, timeout=20)
        assert got[0]["headers"]["User-Agent"].startswith("webhook-router/")

        user = engine.docker("inspect", "-f", "{{.Config.User}}", name).stdout.strip()
        pid = engine.docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        with open(f"/proc/{pid}/status") as f:
            status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        uid = status["Uid"].split()[0]
        assert user == "10001:10001" and uid == "10001"
        wait_until(lambda: engine.docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip() == "healthy",
                   30, 0.5, "HEALTHCHECK healthy")
        time.sleep(2)
        rss = status["VmRSS"].strip()
        with open(f"/proc/{pid}/status") as f:
            rss_now = [l for l in f.read().splitlines() if l.startswith("VmRSS")][0].split(":")[1].strip()
        print(f"\ncontainer: user {user}, uid {uid}, healthy; RSS after a forward {rss}, idle {rss_now}")
        logs = engine.docker("logs", name).stdout
        assert '"msg":"forwarded"' in logs and uniq not in logs.split('"target"')[-1].split(",")[0]
    finally:
        engine.docker("rm", "-f", name, check=False)
