"""Real parts for the integration tests: an isolated Docker engine, a CNCF
registry, a webhook receiver, a TCP proxy to the engine, and the router.

Everything listens on 127.0.0.1, every process is stopped by its PID, every
wait is bounded. The engine is our own dockerd (own data-root, exec-root and
socket); the machine's /var/run/docker.sock is never used."""

import contextlib
import hashlib
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

# WR_VALGRIND=1: every router runs under valgrind's memcheck, and a test fails
# on any memcheck error or leak (see Router.stop). Everything is then ~20x
# slower: waits are stretched by TIME_FACTOR, and the few assertions on
# latency are skipped (see LATENCY_CHECKS).
VALGRIND = os.environ.get("WR_VALGRIND") == "1"
TIME_FACTOR = float(os.environ.get("WR_TIME_FACTOR") or (10 if VALGRIND else 1))
LATENCY_CHECKS = not VALGRIND
VALGRIND_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "valgrind.supp")


_PORTS_GIVEN = set()


def free_port():
    """A port nothing listens on now, and never one this process was given
    before: fixtures pick ports before their servers bind them (the
    registry's and the router's), and the kernel may well hand out a port
    it just released, so two servers could be told the same one."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("no free port that was not handed out already")


def wait_until(pred, timeout, interval=0.02, what="condition"):
    timeout *= TIME_FACTOR
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
    """dockerd isolated from anything else on the machine.

    It gets its own containerd too: dockerd 20.10 starts one of its own only
    when no system containerd answers at /run/containerd/containerd.sock, and
    would otherwise share the machine's. Everything (sockets, data, state,
    logs) lives under one short /tmp/wr-it-* directory.

    Storage driver: WR_STORAGE_DRIVER if set; otherwise dockerd's own choice
    (overlay2 where it works, vfs where it does not), retried with vfs if
    dockerd will not start. The choice is kept for restarts of this engine."""

    def __init__(self, insecure_registry, storage_driver=None):
        # Short paths: unix socket paths are limited to 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="wr-it-", dir="/tmp")
        self.sock = os.path.join(self.dir, "d.sock")
        self.host = "unix://" + self.sock
        self.containerd_sock = os.path.join(self.dir, "c.sock")
        self.insecure_registry = insecure_registry
        self.storage_driver = storage_driver or os.environ.get("WR_STORAGE_DRIVER") or None
        self.proc = None            # dockerd
        self.containerd = None
        self.log = None
        self.start_seconds = None   # how long the last start() took
        os.makedirs(os.path.join(self.dir, "cli"), exist_ok=True)   # the client's own DOCKER_CONFIG

    # The names the brief for the fixtures uses.
    @property
    def socket(self):
        return self.sock

    @property
    def docker_host(self):
        return self.host

    def _open_log(self):
        if not self.log:
            self.log = open(os.path.join(self.dir, "dockerd.log"), "ab")

    def _start_containerd(self):
        if self.containerd and self.containerd.poll() is None:
            return
        config = os.path.join(self.dir, "containerd.toml")
        with open(config, "w") as f:
            f.write(f"""version = 2
root = "{self.dir}/ctd/root"
state = "{self.dir}/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.containerd_sock}"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.dir}/ctd/opt"
""")
        if os.path.exists(self.containerd_sock):
            os.unlink(self.containerd_sock)
        self._open_log()
        self.containerd = subprocess.Popen(["containerd", "--config", config, "--log-level", "warn"],
                                           stdout=self.log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=self._clean_env())
        wait_until(lambda: self.containerd.poll() is not None or self._ctr("version").returncode == 0,
                   30, 0.1, "containerd to answer")
        if self.containerd.poll() is not None:
            raise RuntimeError("containerd exited: " + self.tail_log())

    def _ctr(self, *args, timeout=20):
        try:
            return subprocess.run(["ctr", "--address", self.containerd_sock, "--connect-timeout", "2s", *args],
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124, "", "timeout")

    @staticmethod
    def _clean_env():
        env = dict(os.environ)
        for k in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                  "CONTAINERD_ADDRESS", "CONTAINERD_NAMESPACE"):
            env.pop(k, None)
        return env

    def _start_dockerd(self, driver):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self._open_log()
        args = [DOCKERD, "--data-root", os.path.join(self.dir, "data"),
                "--exec-root", os.path.join(self.dir, "exec"),
                "--pidfile", os.path.join(self.dir, "d.pid"),
                "--containerd", self.containerd_sock,
                "-H", self.host, "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--insecure-registry", self.insecure_registry]
        if driver:
            args += ["--storage-driver", driver]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self._clean_env())
        wait_until(lambda: self.proc.poll() is not None or self.docker("version", check=False, timeout=10).returncode == 0,
                   60, 0.2, "dockerd to answer")
        return self.proc.poll() is None

    def start(self):
        """Starts (or restarts, same data-root and sockets) containerd and dockerd."""
        t0 = time.monotonic()
        self._start_containerd()
        if not self._start_dockerd(self.storage_driver):
            if self.storage_driver:
                raise RuntimeError(f"dockerd (storage driver {self.storage_driver}) exited: " + self.tail_log())
            # dockerd's own pick did not work here: vfs works everywhere.
            self.proc = None
            if not self._start_dockerd("vfs"):
                raise RuntimeError("dockerd exited (also with vfs): " + self.tail_log())
        # A restart must use the same driver: the data-root is laid out for it.
        self.storage_driver = self.docker("info", "-f", "{{.Driver}}").stdout.strip()
        self.start_seconds = time.monotonic() - t0

    def stop(self):
        """Stops dockerd, then containerd, by PID; data-root and sockets stay for start()."""
        if self.proc:
            stop_pid(self.proc, timeout=30)
            self.proc = None
        if self.containerd:
            if self.containerd.poll() is None:
                self._kill_tasks()
            stop_pid(self.containerd, timeout=20)
            self.containerd = None
        if self.log:
            self.log.close()
            self.log = None

    def _kill_tasks(self):
        """Container processes still running in our containerd (dockerd gone): kill them
        through containerd, so no shim is killed under a live container."""
        for ns in self._ctr("namespaces", "ls", "-q").stdout.split():
            tasks = self._ctr("-n", ns, "tasks", "ls", "-q").stdout.split()
            for t in tasks:
                self._ctr("-n", ns, "tasks", "kill", "-a", "-s", "SIGKILL", t)
            for t in tasks:
                deadline = time.monotonic() + 5
                while self._ctr("-n", ns, "tasks", "delete", t).returncode != 0 and time.monotonic() < deadline:
                    time.sleep(0.1)

    def tail_log(self):
        try:
            with open(os.path.join(self.dir, "dockerd.log"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def docker(self, *args, check=True, timeout=120):
        """Debian's docker client against this engine only (never the default socket,
        never the user's ~/.docker config or context)."""
        env = self._clean_env()
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = os.path.join(self.dir, "cli")
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
        subprocess.run(["tar", "-C", root, "--owner=0", "--group=0", "-cf", tar, "."], check=True)
        self.docker("import", "-c", 'CMD ["/bin/sleep","3600"]', tar, IMAGE)

    def _our_pids(self):
        """PIDs of processes whose command line names our directory (containerd
        shims started for this engine's containers), found via /proc."""
        me = os.getpid()
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if self.dir.encode() + b"/" in cmd:
                found.append(int(d))
        return found

    @staticmethod
    def _children(pid):
        kids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            # The ppid is the second field after the ")" that ends the command name.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
        return kids

    def cleanup(self):
        try:
            if self.proc and self.proc.poll() is None:
                # Running containers (swarm tasks) outlive a stopped dockerd as
                # containerd shims: remove them while the engine still answers.
                self.docker("swarm", "leave", "--force", check=False, timeout=60)
                ids = self.docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False, timeout=120)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.stop()
        # Anything of ours still running (a shim, by the path in its command
        # line) is stopped by PID, its children (a container's init) first.
        for pid in self._our_pids():
            for victim in self._children(pid) + [pid]:
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # Unmount what dockerd/containerd left mounted under our roots, deepest first.
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(self.dir + "/")]
        for m in sorted(mounts, key=len, reverse=True):
            if shutil.which("umount"):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Registry:
    """Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1:port.

    Registry(port, notify_url=None, token=None, auth=None, users=None, token_server=None,
             tls_cert=None, tls_key=None)
      notify_url    its notifications go there (with `Authorization: Bearer <token>`
                    when token is given); None: no notifications.
      auth          None: open to anyone. "htpasswd": Basic auth for `users`
                    ({name: password}, stored bcrypt-hashed). "token": the Docker
                    token flow, tokens from `token_server` (a TokenServer), whose
                    certificate the registry trusts (rootcertbundle).
      tls_cert, tls_key  serve https with them (see make_cert); dockerd still pushes
                    to it, as it skips verification for 127.0.0.0/8.
    .host is "127.0.0.1:port" (dockerd treats 127.0.0.0/8 as insecure: plain http).
    close() stops it by PID and removes its storage."""

    def __init__(self, port, notify_url=None, token=None, auth=None, users=None, token_server=None,
                 tls_cert=None, tls_key=None):
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.dir = tempfile.mkdtemp(prefix="wr-reg-", dir="/tmp")
        notifications = ""
        if notify_url:
            headers = f"\n      headers:\n        Authorization: [Bearer {token}]" if token else ""
            notifications = f"""notifications:
  endpoints:
    - name: router
      url: {notify_url}
      timeout: 2s
      threshold: 5
      backoff: 500ms{headers}
"""
        auth_section = ""
        if auth == "htpasswd":
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                for name, password in (users or {}).items():
                    f.write(f"{name}:{bcrypt_hash(password)}\n")
            auth_section = f"""auth:
  htpasswd:
    realm: wr-test
    path: {path}
"""
        elif auth == "token":
            assert token_server is not None, "auth='token' needs a TokenServer"
            auth_section = f"""auth:
  token:
    realm: {token_server.realm}
    service: {token_server.service}
    issuer: {token_server.issuer}
    rootcertbundle: {token_server.cert}
"""
        elif auth is not None:
            raise ValueError(f"unknown registry auth mode {auth!r}")
        tls = f"\n  tls:\n    certificate: {tls_cert}\n    key: {tls_key}" if tls_cert else ""
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
  addr: 127.0.0.1:{port}{tls}
{auth_section}{notifications}""")
        self.log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " + self.tail_log())
            try:
                if tls_cert:
                    import ssl
                    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=1,
                                                    context=ssl._create_unverified_context())
                else:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/v2/")
                return c.getresponse().status in (200, 401)
            except OSError:
                return False
        wait_until(up, 30, 0.1, "registry")

    def tail_log(self):
        try:
            with open(os.path.join(self.dir, "registry.log"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def close(self):
        stop_pid(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def bcrypt_hash(password):
    """An htpasswd bcrypt hash (python3-bcrypt; the cheapest cost, for speed)."""
    import bcrypt
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


class TokenServer:
    """A token server for a Registry(auth="token"): the Docker token flow.

    TokenServer(users=None, expires_in=300, anonymous_actions=())
      users              {name: password}: Basic credentials it accepts; they get
                         every action asked for. Wrong credentials: 401.
      anonymous_actions  what a request without credentials gets, e.g. ("pull",);
                         by default nothing (a token with empty access, which the
                         registry then refuses).
    GET /token?service=…&scope=repository:<name>:<actions> answers
    {"token", "access_token", "expires_in", "issued_at"}: a JWT (RS256) signed with
    its own key, the certificate in the x5c header (python3-jwt, python3-cryptography).
    .realm (URL), .service, .issuer, .cert (PEM path for rootcertbundle), .port;
    .requests: one dict per request (path, user or None, status); .tokens: every
    token issued. close() stops it."""

    def __init__(self, users=None, expires_in=300, anonymous_actions=()):
        import base64
        import jwt
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding
        self.users = dict(users or {})
        self.expires_in = expires_in
        self.anonymous_actions = tuple(anonymous_actions)
        self.service = "wr-test-registry"
        self.issuer = "wr-test-issuer"
        self.dir = tempfile.mkdtemp(prefix="wr-tok-", dir="/tmp")
        self.cert, key = make_cert(self.dir, "token-signer", "DNS:token-signer")
        with open(key, "rb") as f:
            self._key = f.read()
        with open(self.cert, "rb") as f:
            der = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
        self._x5c = [base64.b64encode(der).decode()]
        self._jwt = jwt
        self.requests = []
        self.tokens = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                status, body = outer._answer(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, path, authorization):
        import base64
        import urllib.parse
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        user = None
        if authorization and authorization.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                user, password = "", None
            if self.users.get(user) != password or password is None:
                with self.lock:
                    self.requests.append({"path": path, "user": user, "status": 401})
                return 401, {"details": "invalid credentials"}
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) < 3 or parts[0] != "repository":
                    continue
                asked = parts[-1].split(",")
                name = ":".join(parts[1:-1])
                granted = asked if user is not None else [a for a in asked if a in self.anonymous_actions]
                if granted:
                    access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service, "exp": now + self.expires_in,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        token = self._jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": self._x5c})
        with self.lock:
            self.requests.append({"path": path, "user": user, "status": 200})
            self.tokens.append(token)
        return 200, {"token": token, "access_token": token, "expires_in": self.expires_in,
                     "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def write_auth_file(directory, entries, form="auth"):
    """A Docker config.json for REGISTRY_AUTH_FILE; returns its path.
    entries: {registry key (e.g. "127.0.0.1:5000", "https://index.docker.io/v1/"):
    (user, password)}; form "auth" writes base64 user:password, "username" the
    username/password fields."""
    import base64
    auths = {}
    for key, (user, password) in entries.items():
        if form == "auth":
            auths[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        else:
            auths[key] = {"username": user, "password": password}
    path = os.path.join(directory, "config.json")
    with open(path, "w") as f:
        json.dump({"auths": auths}, f)
    return path


def variant_image(engine, name):
    """Another image from the test image's files with a config of its own
    (ENV WR_VARIANT=name): a different image ID and manifest digest. Returns
    its local name."""
    ref = f"local/bb:{name}"
    if engine.docker("image", "inspect", ref, check=False).returncode != 0:
        engine.docker("import", "-c", 'CMD ["/bin/sleep","3600"]', "-c", f"ENV WR_VARIANT={name}",
                      os.path.join(engine.dir, "img.tar"), ref)
    return ref


def push_variant(engine, registry_host, repo, tag, variant, user=None, password=None):
    """Pushes variant_image(variant) as registry_host/repo:tag; returns its digest."""
    src = variant_image(engine, variant)
    ref = f"{registry_host}/{repo}:{tag}"
    engine.docker("tag", src, ref)
    if user is not None:
        engine.docker("login", "-u", user, "-p", password, registry_host)
    out = engine.docker("push", ref).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    assert m, f"no digest in the output of docker push {ref}: {out}"
    return m.group(1)


def push_image(engine, registry_host, repo, tag, user=None, password=None):
    """Tags the test image as registry_host/repo:tag and pushes it (logging in
    first when user is given); returns the digest `docker push` printed."""
    if user is not None:
        engine.docker("login", "-u", user, "-p", password, registry_host)
    ref = f"{registry_host}/{repo}:{tag}"
    engine.docker("tag", IMAGE, ref)
    out = engine.docker("push", ref).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    assert m, f"no digest in the output of docker push {ref}: {out}"
    return m.group(1)


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
        self.retry_after = "1"    # the Retry-After of a 429 or 503
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                with outer.lock:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "headers": dict(self.headers), "body": body,
                                           "json": parsed, "time": time.monotonic()})
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
                    self.send_header("Retry-After", outer.retry_after)
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
            # The router speaks first: its request head is read (not on
            # the accept thread) before _request decides what to do with it.
            threading.Thread(target=self._read_head, args=(client,), daemon=True).start()

    def _read_head(self, client):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        self._request(client, head)

    def _request(self, client, head):
        """Decides what to do with a connection once its request head is read."""
        self._bridge(client, head)

    def _bridge(self, client, head=b""):
        """Connects client to the engine's socket (sending head first) and
        pipes both ways until either side closes."""
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(self.sock_path)
        except OSError:
            client.close()
            return
        with self.lock:
            self.conns += [client, upstream]
        if head:
            upstream.sendall(head)
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
        cmd = [binary]
        self.valgrind_log = None
        # (A wrapper script starts the binary itself; it is not traced.)
        if VALGRIND and not binary.endswith(".sh"):
            self.valgrind_log = tempfile.mktemp(prefix="wr-valgrind-", dir="/tmp")
            cmd = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=all",
                   "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
                   "--num-callers=30", f"--suppressions={VALGRIND_SUPP}", f"--log-file={self.valgrind_log}",
                   binary]
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            wait_until(lambda: self.proc.poll() is not None or self.find("listening"), 30, 0.02,
                       "router to log 'listening'")
        except AssertionError:
            stop_pid(self.proc, timeout=10)
            raise AssertionError("router did not log 'listening' within 30 s; stdout:\n"
                                 + self.log_tail() + "\nstderr:\n" + self.stderr_text()[-3000:]) from None
        if self.proc.poll() is not None:
            self.stderr.close()
            err = self.stderr_text()
            os.unlink(self.stderr_path)
            raise RuntimeError(f"router exited {self.proc.returncode} at start: " + err[-3000:])

    def _read(self):
        for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"msg": "<not json>", "raw": raw.decode(errors="replace")}
            with self.lock:
                self.lines.append(line)

    def find(self, msg, **fields):
        """Log lines whose msg is `msg` (or for which `msg(line)` is true) and whose
        fields equal `fields`."""
        match = msg if callable(msg) else (lambda l: l.get("msg") == msg)
        with self.lock:
            return [l for l in self.lines
                    if match(l) and all(l.get(k) == v for k, v in fields.items())]

    def wait_log(self, msg, timeout=10, n=1, **fields):
        try:
            return wait_until(lambda: len(self.find(msg, **fields)) >= n and self.find(msg, **fields),
                              timeout, 0.02, f"log {msg!r} {fields}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last log lines:\n{self.log_tail(30)}") from None

    def log_tail(self, n=60):
        with self.lock:
            return "\n".join(json.dumps(l) for l in self.lines[-n:])

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

    def stop(self, timeout=15):
        """SIGTERM; the router must exit 0 within `timeout` seconds with no
        sanitizer report on stderr (the asan preset runs an ASan+UBSan build)."""
        if self.stderr.closed:           # stopped before
            return self.lines
        killed = False
        if self.valgrind_log:
            timeout = max(timeout, 90)   # the leak check at exit takes a while
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait(10)
        code = self.proc.returncode
        self.reader.join(5)
        self.stderr.close()
        err = self.stderr_text()
        os.unlink(self.stderr_path)
        assert not killed, f"router did not exit within {timeout} s of SIGTERM (killed); stderr:\n{err[-3000:]}" \
                           f"\nlast log lines:\n{self.log_tail(20)}"
        for marker in ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:"):
            assert marker not in err, f"sanitizer report ({marker}) from the router:\n{err[-6000:]}"
        if self.valgrind_log:
            self._check_valgrind(code)
        assert code == 0, f"router exited {code} (expected 0 after SIGTERM); stderr:\n{err[-3000:]}" \
                          f"\nlast log lines:\n{self.log_tail(20)}"
        return self.lines

    def _check_valgrind(self, code):
        with open(self.valgrind_log, errors="replace") as f:
            report = f.read()
        summary = re.search(r"ERROR SUMMARY: (\d+) errors", report)
        clean = summary and summary.group(1) == "0" and code != 99
        # Zero leaks: nothing definitely, indirectly or possibly lost, and
        # every block freed (what is still reachable is listed, and must be
        # nothing but the suppressed library singletons).
        lost = re.findall(r"(definitely|indirectly|possibly) lost: ([\d,]+) bytes", report)
        clean = clean and all(n == "0" for _, n in lost)
        if clean:
            os.unlink(self.valgrind_log)
            return
        assert False, f"valgrind memcheck report for the router (exit {code}):\n{report[-12000:]}"

    def stderr_text(self):
        if not self.stderr.closed:
            self.stderr.flush()
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def redacted(url):
    """What the router prints for a well-formed http(s) URL (SPEC, Logs): scheme,
    host and port as written, then /*** and the first 8 hex digits of the
    SHA-256 of the whole URL."""
    scheme, rest = url.split("://", 1)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return f"{scheme.lower()}://{authority.lower()}/***#{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def manifest_payload(fixtures, repository, tag, event_id, host="127.0.0.1:5000", digest=None):
    """The real captured manifest push, with its names changed. Each event id
    stands for a push of its own image: the digest is derived from it unless
    given (one digest redeploys a route once, so two pushes of one image
    would be one redeploy)."""
    import hashlib
    with open(os.path.join(fixtures, "distribution", "04-push-manifest.json")) as f:
        doc = json.load(f)
    ev = doc["events"][0]
    ev["id"] = event_id
    ev["target"]["repository"] = repository
    ev["target"]["tag"] = tag
    ev["target"]["digest"] = digest or "sha256:" + hashlib.sha256(event_id.encode()).hexdigest()
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

    def _request(self, client, head):
        method, target = head.split(b" ", 2)[:2]
        path = re.sub(rb"^/v[0-9.]+", b"", target.split(b"?")[0])
        with self.lock:
            self.seen.append((method.decode(), target.decode()))
        if method != b"GET" or not any(path.startswith(a.encode()) for a in self.ALLOWED):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 23\r\nConnection: close\r\n\r\n{\"message\":\"forbidden\"}")
            client.close()
            return
        self._bridge(client, head)


def push_local(engine, registry, repo, tag):
    """Pushes the test image (local/bb:1) as registry/repo:tag; returns the reference."""
    ref = f"127.0.0.1:{registry.port}/{repo}:{tag}"
    engine.docker("tag", "local/bb:1", ref)
    engine.docker("push", ref)
    return ref


def decision(router, fixtures, repo, tag="latest", prefix="d"):
    """Posts one manifest push of repo:tag (a fresh event id) and returns its decision."""
    decision.n += 1
    event_id = f"{prefix}-{repo}-{tag}-{decision.n}-{time.time()}"
    status, body = router.post("/webhook", manifest_payload(fixtures, repo, tag, event_id))
    assert status == 202, body
    return body["events"][0]["decision"]


decision.n = 0


@contextlib.contextmanager
def swarm_mode(engine):
    """The engine as a one-node Swarm manager on loopback, left again afterwards."""
    engine.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", f"127.0.0.1:{free_port()}")
    try:
        yield engine
    finally:
        engine.docker("swarm", "leave", "--force", check=False)
