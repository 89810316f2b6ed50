"""Notifications end to end: every kind against a fake service on loopback
(the <kind>+http:// form), retries, one message per (target, outcome,
image), a failed redeploy told as failed, notify-only routes, secrets, the
notify-test subcommand and start-up errors."""

import http.server
import json
import subprocess
import threading
import time

import pytest

from harness import TIME_FACTOR, Receiver, manifest_payload, wait_until

SECRET = "s3cr3tT0ken"


class FakeService:
    """Every chat service at once: records each request; answers from a
    per-path script of (status, headers, body), then 200."""

    def __init__(self):
        self.requests = []
        self.script = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                           "body": body, "time": time.monotonic()})
                    todo = outer.script.get(self.path.split("?")[0])
                    status, headers, out = todo.pop(0) if todo else (200, {}, b"{}")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = answer
            do_PUT = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, prefix):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(prefix)]

    def wait_for(self, prefix, n=1, timeout=10):
        return wait_until(lambda: len(self.on(prefix)) >= n and self.on(prefix), timeout * TIME_FACTOR, 0.02,
                          f"{n} request(s) at {prefix}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fake():
    f = FakeService()
    yield f
    f.close()


def labelled(engine, made, image, notify, url=None, name=None):
    args = ["create", "--network", "none", "--label", f"webhook-router.image={image}",
            "--label", f"webhook-router.notify={notify}"]
    if url:
        args += ["--label", f"webhook-router.url={url}"]
    if name:
        args += ["--name", name]
    cid = engine.docker(*args, "local/bb:1").stdout.strip()
    made.append(cid)
    return cid


def every_kind(fake, uniq):
    base = f"127.0.0.1:{fake.port}"
    return {
        "NOTIFY_DC_URL": f"discord+http://{base}/dc{uniq}/api/webhooks/1/{SECRET}",
        "NOTIFY_SL_URL": f"slack+http://{base}/sl{uniq}/services/{SECRET}",
        "NOTIFY_TM_URL": f"teams+http://{base}/tm{uniq}/workflows/{SECRET}",
        "NOTIFY_NT_URL": f"ntfy+http://{base}/nt{uniq}-{SECRET}", "NOTIFY_NT_TOKEN": SECRET,
        "NOTIFY_GO_URL": f"gotify+http://{base}/go{uniq}", "NOTIFY_GO_TOKEN": SECRET,
        "NOTIFY_TG_URL": f"telegram+http://{base}/tg{uniq}/bot{SECRET}/sendMessage?chats=11,22",
        "NOTIFY_PO_URL": f"pushover+http://{base}/po{uniq}/1/messages.json?user=ukey&token={SECRET}",
        "NOTIFY_MX_URL": f"matrix+http://{base}/mx{uniq}?rooms=!room:example", "NOTIFY_MX_TOKEN": SECRET,
        "NOTIFY_GH_URL": f"github+http://{base}/gh{uniq}/repos/o/r/dispatches", "NOTIFY_GH_TOKEN": SECRET,
        "NOTIFY_GE_URL": f"http://u:{SECRET}@{base}/ge{uniq}",
        "NOTIFY_GE_TEMPLATE": '{"ref":"main","variables":{"IMAGE":"{image}","OBJ":"{objects}"}}',
        "NOTIFY_GE_HEADERS": "X-Extra: yes",
    }


def test_every_kind_notify_only(fake, engine, made, start_router, fixtures_dir, uniq):
    repo = f"team/nk{uniq}"
    env = every_kind(fake, uniq)
    names = "dc sl TM nt go tg po mx gh ge"
    inline = f"slack+http://127.0.0.1:{fake.port}/in{uniq}/{SECRET}"
    labelled(engine, made, repo, f"{names} {inline}", name=f"nk-{uniq}")
    labelled(engine, made, repo, "dc nope", name=f"bad-{uniq}")   # unknown target: malformed
    router = start_router(env=env)
    router.wait_ready()
    warn = router.wait_log("labels ignored")[0]
    assert 'unknown notification target \\"nope\\"' in json.dumps(warn["error"]) or "nope" in warn["error"]
    status, body = router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"nk-{uniq}"))
    assert status == 202 and body["events"][0]["decision"] == "forwarded"
    assert body["events"][0]["targets"] == 0 and body["events"][0]["notify"] == 1   # redeploys nothing

    dc = fake.wait_for(f"/dc{uniq}")[0]
    assert dc["method"] == "POST" and dc["headers"]["Content-Type"] == "application/json"
    assert dc["headers"]["User-Agent"].startswith("webhook-router/")
    content = json.loads(dc["body"])["content"]
    assert f"127.0.0.1:5000/{repo}:v1" in content and f"nk-{uniq}" in content
    assert "text" in json.loads(fake.wait_for(f"/sl{uniq}")[0]["body"])
    assert "text" in json.loads(fake.wait_for(f"/in{uniq}")[0]["body"])
    card = json.loads(fake.wait_for(f"/tm{uniq}")[0]["body"])
    assert card["type"] == "message"
    assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["attachments"][0]["content"]["type"] == "AdaptiveCard"
    nt = fake.wait_for(f"/nt{uniq}")[0]
    assert nt["headers"]["Authorization"] == f"Bearer {SECRET}" and nt["headers"]["Title"]
    assert nt["body"].decode().startswith("New image")
    go = fake.wait_for(f"/go{uniq}/message")[0]
    assert go["headers"]["X-Gotify-Key"] == SECRET
    assert set(json.loads(go["body"])) == {"title", "message", "priority"}
    tg = fake.wait_for(f"/tg{uniq}/bot{SECRET}/sendMessage", 2)
    assert sorted(json.loads(r["body"])["chat_id"] for r in tg) == ["11", "22"]
    po = json.loads(fake.wait_for(f"/po{uniq}/1/messages.json")[0]["body"])
    assert po["token"] == SECRET and po["user"] == "ukey" and po["message"]
    mx = fake.wait_for(f"/mx{uniq}/_matrix/client/v3/rooms/%21room%3Aexample/send/m.room.message/")[0]
    assert mx["method"] == "PUT" and mx["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(mx["body"])["msgtype"] == "m.text"
    gh = fake.wait_for(f"/gh{uniq}/repos/o/r/dispatches")[0]
    assert gh["headers"]["Accept"] == "application/vnd.github+json"
    assert gh["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    assert gh["headers"]["Authorization"] == f"Bearer {SECRET}"
    payload = json.loads(gh["body"])
    assert payload["event_type"] == "image_published"
    assert payload["client_payload"]["repository"] == repo and len(payload["client_payload"]) <= 10
    ge = fake.wait_for(f"/ge{uniq}")[0]
    assert ge["headers"]["X-Extra"] == "yes" and ge["headers"]["Authorization"].startswith("Basic ")
    assert json.loads(ge["body"]) == {"ref": "main", "variables": {"IMAGE": f"127.0.0.1:5000/{repo}:v1",
                                                                  "OBJ": f"nk-{uniq}"}}
    # Exactly one message per target (telegram: one per chat), nothing else sent.
    router.wait_log("notification sent", n=12, timeout=10 * TIME_FACTOR)
    time.sleep(0.7 * TIME_FACTOR)
    assert len(router.find("notification sent")) == 12
    assert not router.find("forwarded")

    # Secrets: never in the log, /routes, /metrics; targets shown redacted.
    _, routes = router.get("/routes")
    shown = [r for r in routes["routes"] if r["repository"] == repo][0]["notify"]
    assert len(shown) == 11 and shown[0].startswith("discord 127.0.0.1:") and "#" in shown[0]
    _, metrics = router.get("/metrics")
    assert b'webhook_router_notifications_total{kind="telegram",outcome="delivered"} 2' in metrics
    for text in (json.dumps(routes), metrics.decode(), router.log_tail(10000), router.stderr_text()):
        assert SECRET not in text


def test_retries_and_rate_limits(fake, engine, made, start_router, fixtures_dir, uniq):
    repo = f"team/nr{uniq}"
    path = f"/rt{uniq}/api/webhooks/1/x"
    fake.script[path] = [(500, {}, b""), (429, {"Retry-After": "1"}, b""),
                         (429, {"Content-Type": "application/json"}, b'{"retry_after": 0.3, "global": false}')]
    labelled(engine, made, repo, "chat")
    router = start_router(env={"NOTIFY_CHAT_URL": f"discord+http://127.0.0.1:{fake.port}{path}",
                               "FORWARD_RETRIES": "3"})
    router.wait_ready()
    router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"nr-{uniq}"))
    got = fake.wait_for(path, 4, timeout=15)
    assert [json.loads(r["body"]) for r in got[1:]] == [json.loads(got[0]["body"])] * 3   # the same message
    assert got[2]["time"] - got[1]["time"] >= 0.9               # Retry-After: 1
    assert 0.25 <= got[3]["time"] - got[2]["time"] < 0.9 * TIME_FACTOR   # the body's retry_after: 0.3
    sent = router.wait_log("notification sent", timeout=10 * TIME_FACTOR)[0]
    assert sent["attempt"] == 4


def test_one_message_for_three_and_failed(fake, engine, made, start_router, fixtures_dir, uniq):
    rx = Receiver()
    try:
        repo, bad = f"team/n3{uniq}", f"team/nf{uniq}"
        for i in range(3):   # three stacks of one image, each its own webhook
            labelled(engine, made, repo, "chat", url=rx.url(f"/ok{i}-{uniq}"), name=f"n3-{i}-{uniq}")
        labelled(engine, made, bad, "chat", url=rx.url(f"/fail-{uniq}"), name=f"nf-{uniq}")
        rx.script[f"/fail-{uniq}"] = [404]
        path = f"/m3{uniq}"
        router = start_router(env={"NOTIFY_CHAT_URL": f"slack+http://127.0.0.1:{fake.port}{path}",
                                   "NOTIFY_CHAT_ON": "push,delivered,failed", "FORWARD_RETRIES": "0"})
        router.wait_ready()
        router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"n3a-{uniq}"))
        router.post("/webhook", manifest_payload(fixtures_dir, bad, "v1", f"nf-{uniq}"))
        for i in range(3):
            rx.wait_for(f"/ok{i}-{uniq}")
        time.sleep(1.2 * TIME_FACTOR)   # past the window
        texts = [json.loads(r["body"])["text"] for r in fake.on(path)]
        pushed = [t for t in texts if "push" in t.split("\n")[0] and repo in t]
        delivered = [t for t in texts if "delivered" in t.split("\n")[0]]
        failed = [t for t in texts if "failed" in t.split("\n")[0]]
        assert len(pushed) == 1 and len(delivered) == 1 and len(failed) == 1, texts
        for i in range(3):
            assert f"n3-{i}-{uniq}" in pushed[0] and f"n3-{i}-{uniq}" in delivered[0]
        assert f"nf-{uniq}" in failed[0] and "HTTP 404" in failed[0]
    finally:
        rx.close()


def run(binary, env, *args):
    full = {"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json"}
    full.update(env)
    return subprocess.run([binary, *args], env=full, capture_output=True, text=True, timeout=30 * TIME_FACTOR)


def test_notify_test_and_config_errors(fake, binary, uniq):
    ok = run(binary, {"NOTIFY_A_URL": f"github+http://127.0.0.1:{fake.port}/nt{uniq}", "NOTIFY_A_TOKEN": SECRET},
             "notify-test", "a")
    assert ok.returncode == 0 and ok.stdout.startswith("delivered: HTTP 200 (github 127.0.0.1:"), ok
    fake.wait_for(f"/nt{uniq}")
    fake.script[f"/nt404{uniq}/{SECRET}"] = [(404, {}, b"")]
    bad = run(binary, {"NOTIFY_A_URL": f"slack+http://127.0.0.1:{fake.port}/nt404{uniq}/{SECRET}"}, "notify-test", "A")
    assert bad.returncode == 1 and bad.stdout.startswith("failed: HTTP 404"), bad
    down = run(binary, {"NOTIFY_A_URL": f"discord+http://127.0.0.1:1/{SECRET}"}, "notify-test", "a")
    assert down.returncode == 1 and "connection refused" in down.stdout, down
    assert run(binary, {}, "notify-test", "nope").returncode == 1
    for env, var in (({"NOTIFY_X_URL": f"discord://{SECRET}"}, "NOTIFY_X_URL"),
                     ({"NOTIFY_X_URL": f"https://h/{SECRET}", "NOTIFY_X_TEMPLATE": "{nope}"}, "NOTIFY_X_TEMPLATE"),
                     ({"NOTIFY_X_URL": f"https://h/{SECRET}", "NOTIFY_X_ON": "sometimes"}, "NOTIFY_X_ON"),
                     ({"NOTIFY_X_KIND": "slack"}, "NOTIFY_X_URL")):
        r = run(binary, env, "notify-test", "x")
        assert r.returncode == 2, r
        assert var in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        for out in (ok, bad, down, r):
            assert SECRET not in out.stdout + out.stderr


def test_engine_update_told_as_deployed(fake, engine, registry, start_router, uniq):
    from test_engine_updates import make_image
    repo = f"team/nu{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"nu1-{uniq}")
    name = f"nu{uniq}"
    engine.docker("run", "-d", "--network", "none", "--name", name, "--label", f"webhook-router.image={repo}",
                  "--label", "webhook-router.update=true", "--label", "webhook-router.notify=chat", ref)
    try:
        path = f"/nu{uniq}"
        router = start_router(env={"ENGINE_UPDATES": "1",
                                   "NOTIFY_CHAT_URL": f"slack+http://127.0.0.1:{fake.port}{path}"})
        router.wait_ready()
        make_image(engine, ref, f"nu2-{uniq}")
        engine.docker("push", ref)
        router.wait_log("container updated", container=name, timeout=60 * TIME_FACTOR)
        text = json.loads(fake.wait_for(path)[0]["body"])["text"]
        assert text.startswith("*webhook-router: deployed") and name in text, text
        time.sleep(0.7 * TIME_FACTOR)
        assert len(fake.on(path)) == 1   # default ON: deployed, not push or delivered
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_unconfirmed_redeploy_told_and_kept_in_history(fake, engine, made, start_router, fixtures_dir, uniq):
    """A redeploy POST answered 204 where nothing happens is unconfirmed after
    DEPLOY_CONFIRM_SECS: told to the route's targets (default _ON), and the
    notification itself is a history entry (action notify), target redacted."""
    rx = Receiver()
    try:
        repo = f"team/nu{uniq}"
        labelled(engine, made, repo, "chat", url=rx.url(f"/nu-{uniq}"), name=f"nu-{uniq}")
        path = f"/nu{uniq}/services/{SECRET}"
        router = start_router(env={"NOTIFY_CHAT_URL": f"slack+http://127.0.0.1:{fake.port}{path}",
                                   "DEPLOY_CONFIRM_SECS": "2"})
        router.wait_ready()
        status, _ = router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"nu-{uniq}"))
        assert status == 202
        rx.wait_for(f"/nu-{uniq}")
        [msg] = fake.wait_for(f"/nu{uniq}/", 1, timeout=10)
        text = json.loads(msg["body"])["text"]
        assert "unconfirmed" in text.split("\n")[0] and repo in text and f"nu-{uniq}" in text, text

        def notify_entry():
            _, body = router.get(f"/history?repository={repo}")
            return [e for e in body["entries"] if e["action"] == "notify" and e["outcome"] == "delivered"] or None
        [e] = wait_until(notify_entry, 5 * TIME_FACTOR, 0.1, "a notify entry")
        assert e["target"].startswith("slack 127.0.0.1:") and SECRET not in json.dumps(e)
    finally:
        rx.close()
