"""A webhook URL's secret never leaves the router, wherever it sits in the URL.

Labels put a secret in every shape a real webhook URL has: before a {tag}
placeholder (Portainer), as the first and only path segment (ntfy), in the
user info (refused as a label), in the query, in the middle of the path, in a
target that fails, in a value that is not a URL at all. A real push then goes
through the real registry, and the router's whole output (stdout and
stderr), /routes and /metrics are searched for every secret."""

import json
import uuid

from harness import free_port, push_local, redacted


def test_no_secret_in_logs_routes_or_metrics(engine, registry, receiver, start_router, containers, uniq):
    repo = f"team/sec{uniq}"
    secrets = {name: f"{name}{uuid.uuid4().hex}" for name in
               ("placeholder", "first", "userinfo", "query", "hooks", "dead", "notaurl", "ftp")}
    s = secrets
    dead_port = free_port()   # nothing listens there: the forward fails and is logged
    receiver.script[f"/hooks/{s['hooks']}/deploy"] = [503]   # one retry, logged with its target
    good = {
        "placeholder": receiver.url(f"/api/webhooks/{s['placeholder']}/{{tag}}"),
        "first": receiver.url(f"/{s['first']}"),
        "query": receiver.url(f"/q?token={s['query']}"),
        "hooks": receiver.url(f"/hooks/{s['hooks']}/deploy"),
        "dead": f"http://127.0.0.1:{dead_port}/dead/{s['dead']}",
    }
    for url in good.values():
        containers(repo, url)
    bad = {
        "userinfo": f"http://user:{s['userinfo']}@127.0.0.1:{receiver.port}/x",
        "notaurl": f"not a url {s['notaurl']}",
        "ftp": f"ftp://127.0.0.1/{s['ftp']}",
    }
    bad_ids = {name: containers(repo, url) for name, url in bad.items()}

    router = start_router(env={"FORWARD_RETRIES": "1"})
    router.wait_ready()
    # Each refused label is one warn line naming its container.
    for cid in bad_ids.values():
        router.wait_log("labels ignored", id=cid)

    tag = f"t{uniq}"
    push_local(engine, registry, repo, tag)
    receiver.wait_for(f"/api/webhooks/{s['placeholder']}/{tag}", timeout=15)
    receiver.wait_for(f"/{s['first']}", timeout=15)
    receiver.wait_for(f"/q?token={s['query']}", timeout=15)
    receiver.wait_for(f"/hooks/{s['hooks']}/deploy", n=2, timeout=15)   # 503, then the retry
    router.wait_log("forward failed", timeout=15)
    router.wait_log("forwarded", n=4, timeout=15)

    status, routes = router.get("/routes")
    assert status == 200
    status, metrics = router.get("/metrics")
    assert status == 200
    metrics = metrics.decode() if isinstance(metrics, bytes) else json.dumps(metrics)
    stderr = router.stderr_text()
    lines = router.stop()

    output = json.dumps(lines) + "\n" + stderr
    where = {"router output": output, "/routes": json.dumps(routes), "/metrics": metrics}
    leaks = [(name, place) for name, secret in secrets.items()
             for place, text in where.items() if secret in text]
    assert not leaks, f"secrets leaked: {leaks}"

    # /routes shows the SPEC's form: scheme, host and port, then a fingerprint.
    mine = [r for r in routes["routes"] if r["repository"] == repo]
    assert sorted(r["url"] for r in mine) == sorted(redacted(u) for u in good.values()), mine
    # Forward log lines fingerprint the URL called, placeholders substituted.
    targets = {l.get("target") for l in lines}
    assert redacted(good["placeholder"].replace("{tag}", tag)) in targets
    assert redacted(good["dead"]) in targets
