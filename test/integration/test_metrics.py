"""/metrics: valid Prometheus text format 0.0.4, and its counters move."""

import re

from harness import manifest_payload

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                    r'(-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')


def parse(text):
    """Returns {(name, frozenset(labels)): value}; asserts every line is valid."""
    samples, typed = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            typed[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, f"sample without TYPE: {line}"
        pairs = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        samples[(name, pairs)] = float(value)
    return samples, typed


def get(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_parse_and_move(engine, receiver, start_router, containers, fixtures_dir, uniq):
    repo = f"team/m{uniq}"
    containers(repo, receiver.url(f"/m/{uniq}"))
    router = start_router()
    router.wait_ready()
    status, text = router.request("GET", "/metrics")
    assert status == 200
    before, typed = parse(text.decode())
    assert typed["webhook_router_forward_duration_seconds"] == "histogram"
    assert typed["webhook_router_webhook_requests_total"] == "counter"
    assert get(before, "webhook_router_build_info", version="0.1.0") == 1
    assert get(before, "webhook_router_docker_connected", engine=engine.host) == 1
    assert get(before, "webhook_router_routes") >= 1

    router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"m-{uniq}"))
    router.post("/webhook", b"{not json")
    with open(f"{fixtures_dir}/distribution/01-pull-blob.json", "rb") as f:
        router.post("/webhook", f.read())
    receiver.wait_for(f"/m/{uniq}", 1)
    router.wait_log("forwarded", event_id=f"m-{uniq}")

    after, _ = parse(router.request("GET", "/metrics")[1].decode())
    d = lambda name, **l: get(after, name, **l) - get(before, name, **l)
    assert d("webhook_router_webhook_requests_total", format="distribution", status="202") == 2
    assert d("webhook_router_webhook_requests_total", format="unknown", status="400") == 1
    assert d("webhook_router_events_total", decision="forwarded") == 1
    assert d("webhook_router_events_total", decision="ignored") == 1
    assert d("webhook_router_forwards_total", outcome="delivered", attempt="1") == 1
    assert d("webhook_router_forward_duration_seconds_count") == 1
    assert get(after, "webhook_router_forward_duration_seconds_bucket", le="+Inf") == \
        get(after, "webhook_router_forward_duration_seconds_count")
