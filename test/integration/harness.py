"""Real parts for the integration tests: an isolated Docker engine, a CNCF
registry, a webhook receiver, a TCP proxy to the engine, and the router.

Everything listens on 127.0.0.1, every process is stopped by its PID, every
wait is bounded. The engine is our own dockerd (own data-root, exec-root and
socket); the machine's /var/run/docker.sock is never used."""

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

DOCKER_CLI = "/usr/bin/docker"      # Debian's client, matching the engine
DOCKERD = "/usr/sbin/dockerd"
REGISTRY = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"
IMAGE = "local/bb:1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop_pid(proc, sig=signal.SIGTERM, timeout=20):
    """Stops a Popen by its PID; returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


class Engine:
    """dockerd isolated from anything else on the machine."""

    def __init__(self, insecure_registry):
        # Short paths: unix socket paths are limited to 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="wr-it-", dir="/tmp")
        self.sock = os.path.join(self.dir, "d.sock")
        self.host = "unix://" + self.sock
        self.insecure_registry = insecure_registry
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(os.path.join(self.dir, "dockerd.log"), "ab")
        self.proc = subprocess.Popen(
            [DOCKERD, "--data-root", os.path.join(self.dir, "data"),
             "--exec-root", os.path.join(self.dir, "exec"),
             "--pidfile", os.path.join(self.dir, "d.pid"),
             "-H", self.host, "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--insecure-registry", self.insecure_registry],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is not None or self.docker("version", check=False).returncode == 0,
                   60, 0.2, "dockerd to answer")
        if self.proc.poll() is not None:
            raise RuntimeError("dockerd exited: " + self.tail_log())

    def stop(self):
        if self.proc:
            stop_pid(self.proc, timeout=30)
            self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def tail_log(self):
        try:
            with open(os.path.join(self.dir, "dockerd.log"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def docker(self, *args, check=True, timeout=120):
        env = dict(os.environ, DOCKER_HOST=self.host)
        env.pop("DOCKER_CONTEXT", None)
        r = subprocess.run([DOCKER_CLI, *args], env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {r.stderr.strip()}")
        return r

    def import_test_image(self):
        """A one-binary image from Debian's busybox-static: nothing is pulled."""
        if self.docker("image", "inspect", IMAGE, check=False).returncode == 0:
            return
        root = os.path.join(self.dir, "img")
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
        for name in ("sh", "sleep"):
            os.symlink("busybox", os.path.join(root, "bin", name))
        tar = os.path.join(self.dir, "img.tar")
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
        self.docker("import", "-c", 'CMD ["/bin/sleep","3600"]', tar, IMAGE)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            # Running containers (swarm tasks) outlive a stopped dockerd as
            # containerd shims: remove them while the engine still answers.
            self.docker("swarm", "leave", "--force", check=False)
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        self.stop()
        # Anything of ours still running (by its path) is stopped by PID.
        for line in subprocess.run(["pgrep", "-f", self.dir], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(line), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        # dockerd may leave overlay mounts under its roots; unmount before removing.
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if self.dir in line]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Registry:
    """Debian's docker-registry (CNCF distribution 2.8) notifying the router."""

    def __init__(self, port, notify_url, token=None):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="wr-reg-", dir="/tmp")
        headers = f"\n      headers:\n        Authorization: [Bearer {token}]" if token else ""
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
notifications:
  endpoints:
    - name: router
      url: {notify_url}
      timeout: 2s
      threshold: 5
      backoff: 500ms{headers}
""")
        self.log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def up():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/v2/")
                return c.getresponse().status == 200
            except OSError:
                return False
        wait_until(up, 30, 0.1, "registry")

    def close(self):
        stop_pid(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Receiver:
    """The stack webhook: records every request it gets."""

    def __init__(self, tls_cert=None, tls_key=None, ipv6=False):
        self.requests = []
        self.lock = threading.Lock()
        self.status = 204
        self.delay = 0.0          # seconds to wait before answering
        self.script = {}          # path -> statuses to answer in turn, then self.status
        self.connections = 0      # TCP connections accepted
        self.drop_after_reply = False   # close each connection silently after answering
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body, "time": time.monotonic()})
                with outer.lock:
                    todo = outer.script.get(self.path)
                    status = todo.pop(0) if todo else outer.status
                if outer.delay:
                    time.sleep(outer.delay)
                if status == "hang":
                    time.sleep(5)
                    self.close_connection = True
                    return
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                if outer.drop_after_reply:
                    self.close_connection = True   # without saying so in a header

            def setup(self):
                with outer.lock:
                    outer.connections += 1
                super().setup()

            def log_message(self, *args):
                pass

        server_class = http.server.ThreadingHTTPServer
        if ipv6:
            server_class = type("V6Server", (http.server.ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        self.server = server_class(("::1" if ipv6 else "127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.scheme = "http"
        if tls_cert:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path, host=None):
        host = host or ("[::1]" if self.server.address_family == socket.AF_INET6 else "127.0.0.1")
        return f"{self.scheme}://{host}:{self.port}{path}"

    def on(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait_for(self, path, n=1, timeout=10):
        return wait_until(lambda: len(self.on(path)) >= n and self.on(path), timeout, 0.02,
                          f"{n} request(s) at {path}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class UnixProxy:
    """tcp://127.0.0.1:port -> the engine's unix socket, with an off switch.

    Cutting it is how a test takes the engine away from the router without
    taking it away from itself."""

    def __init__(self, sock_path, port=None):
        self.sock_path = sock_path
        self.port = port or free_port()
        self.listener = None
        self.conns = []
        self.lock = threading.Lock()

    @property
    def host(self):
        return f"tcp://127.0.0.1:{self.port}"

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self.sock_path)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        if self.listener:
            # shutdown wakes the thread blocked in accept(); close alone does not.
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []


class Router:
    """The webhook-router binary under test, its JSON log lines collected."""

    def __init__(self, binary, port, env):
        self.port = port
        self.lines = []
        self.lock = threading.Lock()
        full_env = dict(os.environ, LISTEN_ADDR="127.0.0.1", LISTEN_PORT=str(port), LOG_LEVEL="debug")
        full_env.update(env)
        self.stderr_path = tempfile.mktemp(prefix="wr-router-err-", dir="/tmp")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([binary], env=full_env, stdout=subprocess.PIPE,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_until(lambda: self.proc.poll() is not None or self.find("listening"), 30, 0.02,
                   "router to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("router exited at start: " + self.stderr_text())

    def _read(self):
        for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"msg": "<not json>", "raw": raw.decode(errors="replace")}
            with self.lock:
                self.lines.append(line)

    def find(self, msg, **fields):
        with self.lock:
            return [l for l in self.lines
                    if l.get("msg") == msg and all(l.get(k) == v for k, v in fields.items())]

    def wait_log(self, msg, timeout=10, n=1, **fields):
        return wait_until(lambda: len(self.find(msg, **fields)) >= n and self.find(msg, **fields),
                          timeout, 0.02, f"log {msg!r} {fields}")

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            ctype = r.getheader("Content-Type", "")
            parsed = json.loads(data) if data and "json" in ctype else data
            return r.status, parsed
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return self.request("POST", path, body, headers)

    def wait_ready(self, timeout=20):
        return wait_until(lambda: self.get("/ready")[0] == 200, timeout, 0.05, "router /ready 200")

    def stderr_text(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM; the router must exit 0 with no sanitizer report."""
        code = stop_pid(self.proc)
        self.reader.join(5)
        self.stderr.close()
        err = self.stderr_text()
        os.unlink(self.stderr_path)
        assert code == 0, f"router exited {code}: {err[-3000:]}"
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
            assert marker not in err, err[-5000:]
        return self.lines


def manifest_payload(fixtures, repository, tag, event_id, host="127.0.0.1:5000"):
    """The real captured manifest push, with its names changed."""
    with open(os.path.join(fixtures, "distribution", "04-push-manifest.json")) as f:
        doc = json.load(f)
    ev = doc["events"][0]
    ev["id"] = event_id
    ev["target"]["repository"] = repository
    ev["target"]["tag"] = tag
    ev["request"]["host"] = host
    return doc


def make_cert(directory, name, san):
    """A self-signed certificate made with the openssl CLI; returns (cert, key)."""
    cert = os.path.join(directory, f"{name}.pem")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class GetOnlyProxy(UnixProxy):
    """Like a read-only docker-socket-proxy: GET on containers, services,
    events, info, version and _ping pass; anything else gets 403. Every
    request line is recorded, so a test can show no write was ever tried."""

    ALLOWED = ("/containers", "/services", "/events", "/info", "/version", "/_ping")

    def __init__(self, sock_path, port=None):
        super().__init__(sock_path, port)
        self.seen = []

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        method, target = head.split(b" ", 2)[:2]
        path = re.sub(rb"^/v[0-9.]+", b"", target.split(b"?")[0])
        with self.lock:
            self.seen.append((method.decode(), target.decode()))
        if method != b"GET" or not any(path.startswith(a.encode()) for a in self.ALLOWED):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 23\r\nConnection: close\r\n\r\n{\"message\":\"forbidden\"}")
            client.close()
            return
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(self.sock_path)
        except OSError:
            client.close()
            return
        with self.lock:
            self.conns += [client, upstream]
        upstream.sendall(head)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)
