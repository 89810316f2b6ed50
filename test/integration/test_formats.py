"""Every payload format, through the running router, reaches the labelled
receiver; redeliveries are recognised."""

import json
import os

import pytest

from harness import manifest_payload

PAYLOADS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "payloads")

# fixture file, headers, the label that must match it (host-qualified where
# the format names its registry, to prove the host was extracted), the tag
CASES = [
    ("dockerhub-push.json", {}, "docker.io/acme/shop", "v2.3.1"),
    ("harbor-push.json", {}, "harbor.example.com/team/myapp", "latest"),
    ("harbor-cloudevents-push.json", {}, "harbor.example.com:8443/team/myapp", "v1"),
    ("github-registry-package.json", {"X-GitHub-Event": "registry_package"}, "ghcr.io/acme-org/myapp", "v1.4.0"),
    ("github-package.json", {"X-GitHub-Event": "package"}, "ghcr.io/acme-org/myapp", "latest"),
    ("gitea-package.json", {"X-Gitea-Event": "package", "X-GitHub-Event": "package"}, "git.example.com/team/myapp", "v3"),
    ("quay-push.json", {}, "quay.io/team/myapp", "v5"),
    ("acr-push.json", {}, "myregistry.azurecr.io/team/myapp", "v7"),
    ("generic-image.json", {}, "registry.local:5000/team/myapp", "v9"),
    ("generic-repository.json", {}, "registry.local:5000/team/myapp", "v10"),
]


@pytest.fixture(scope="module")
def labelled(engine, receiver):
    """One container per case, each with its own receiver path."""
    ids = []
    for i, (_, _, label, tag) in enumerate(CASES):
        ids.append(engine.docker("create", "--network", "none",
                                 "--label", f"webhook-router.image={label}",
                                 "--label", f"webhook-router.url={receiver.url(f'/fmt/{i}')}",
                                 "--label", f"webhook-router.tag={tag}",
                                 "local/bb:1").stdout.strip())
    yield
    for cid in ids:
        engine.docker("rm", "-f", cid, check=False)


def test_every_format_reaches_its_receiver(labelled, start_router, receiver):
    router = start_router()
    router.wait_ready()
    for i, (name, headers, label, tag) in enumerate(CASES):
        with open(os.path.join(PAYLOADS, name), "rb") as f:
            status, body = router.post("/webhook", f.read(), headers)
        assert status == 202, (name, body)
        decided = [e for e in body["events"] if e["tag"] == tag]
        assert decided and decided[0]["decision"] == "forwarded", (name, body)
        assert decided[0]["format"] == body["format"]
        got = receiver.wait_for(f"/fmt/{i}", 1, timeout=5)
        sent = json.loads(got[0]["body"])
        assert sent["tag"] == tag, (name, sent)


def test_same_event_id_twice_is_one_post(start_router, receiver, containers, fixtures_dir, uniq):
    repo = f"team/dup{uniq}"
    containers(repo, receiver.url(f"/dup/{uniq}"))
    router = start_router()
    router.wait_ready()
    payload = manifest_payload(fixtures_dir, repo, "latest", f"id-{uniq}")
    assert router.post("/webhook", payload)[1]["events"][0]["decision"] == "forwarded"
    status, body = router.post("/webhook", payload)
    assert status == 202 and body["events"][0]["decision"] == "duplicate"
    receiver.wait_for(f"/dup/{uniq}", 1)
    router.wait_log("duplicate event not forwarded")
    assert len(receiver.on(f"/dup/{uniq}")) == 1


def test_hostile_repository_name_cannot_break_the_json(start_router):
    router = start_router()
    evil = 'a"}],"x":{"y":"\\u0000\u2028</script>'
    status, body = router.post("/webhook", {"repository": evil, "tag": "t\"\n"})
    assert status == 202      # parsed as JSON by the harness: the body stayed valid
    assert body["events"][0]["repository"] == evil
    assert body["events"][0]["tag"] == "t\"\n"
