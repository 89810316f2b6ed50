"""Webhook authentication: a real registry sending its configured bearer
token gets through; anything without the secret gets 401."""

import hashlib
import hmac
import json

from harness import Registry, free_port, manifest_payload

TOKEN = "tok-3f9a61c2e8"
SECRET = "hmac-7d1e0b44"


def test_registry_bearer_token_delivers(engine, router_port, start_router, receiver, containers, uniq):
    reg = Registry(free_port(), f"http://127.0.0.1:{router_port}/webhook", token=TOKEN)
    try:
        containers("team/authapp", receiver.url(f"/auth/{uniq}"))
        router = start_router(env={"WEBHOOK_TOKEN": TOKEN})
        router.wait_ready()
        ref = f"127.0.0.1:{reg.port}/team/authapp:{uniq}"
        engine.docker("tag", "local/bb:1", ref)
        engine.docker("push", ref)
        got = receiver.wait_for(f"/auth/{uniq}", 1, timeout=15)
        assert json.loads(got[0]["body"])["tag"] == uniq
        # The same body without the header is refused, with a reason.
        status, body = router.post("/webhook", {"events": []})
        assert status == 401 and "missing token" in body["error"]
        status, body = router.post("/webhook", {"events": []}, {"Authorization": "Bearer nope"})
        assert status == 401 and body == {"error": "invalid token"}
        assert all(TOKEN not in json.dumps(l) for l in router.lines)
    finally:
        reg.close()


def test_token_in_path(start_router, receiver, containers, fixtures_dir, uniq):
    repo = f"team/path{uniq}"
    containers(repo, receiver.url(f"/path/{uniq}"))
    router = start_router(env={"WEBHOOK_TOKEN": TOKEN})
    router.wait_ready()
    status, body = router.post(f"/webhook/{TOKEN}", manifest_payload(fixtures_dir, repo, "v1", f"p-{uniq}"))
    assert status == 202 and body["events"][0]["decision"] == "forwarded"
    assert router.post("/webhook/wrong-token", {"events": []})[0] == 401
    receiver.wait_for(f"/path/{uniq}", 1)
    assert all(TOKEN not in json.dumps(l) for l in router.lines)
    assert not router.find("webhook authentication is off: anyone who can reach the port can trigger "
                           "redeploys; set WEBHOOK_TOKEN or WEBHOOK_HMAC_SECRET")


def test_hmac_signature(start_router, receiver, containers, fixtures_dir, uniq):
    repo = f"team/sig{uniq}"
    containers(repo, receiver.url(f"/sig/{uniq}"))
    router = start_router(env={"WEBHOOK_HMAC_SECRET": SECRET})
    router.wait_ready()
    body = (json.dumps(manifest_payload(fixtures_dir, repo, "v1", f"s-{uniq}")) + "\n").encode()
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, _ = router.post("/webhook", body, {"X-Hub-Signature-256": "sha256=" + sig})
    assert status == 202
    status, _ = router.post("/webhook", body, {"X-Gitea-Signature": sig})
    assert status == 202      # same event id: a duplicate, but authenticated
    status, resp = router.post("/webhook", body[:-1], {"X-Hub-Signature-256": "sha256=" + sig})
    assert status == 401 and resp == {"error": "invalid signature"}
    status, resp = router.post("/webhook", body)
    assert status == 401 and "missing signature" in resp["error"]
    receiver.wait_for(f"/sig/{uniq}", 1)
    assert all(SECRET not in json.dumps(l) for l in router.lines)
