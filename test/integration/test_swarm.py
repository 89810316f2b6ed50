"""Swarm: service labels route, follow create/update/remove, replicas forward
once. A single-node swarm on this file's own isolated engine."""

import time

import pytest

from harness import LATENCY_CHECKS, decision, swarm_mode, wait_until


@pytest.fixture(scope="module")
def swarm(engine):
    with swarm_mode(engine):
        yield engine


def service(engine, name, *args):
    engine.docker("service", "create", "--detach", "--no-resolve-image", "--name", name, *args, "local/bb:1")


def until(router, fixtures, repo, want, tag="latest", timeout=5):
    t0 = time.monotonic()
    wait_until(lambda: decision(router, fixtures, repo, tag) == want, timeout, 0.02, f"{repo}:{tag} -> {want}")
    return time.monotonic() - t0


def test_swarm_init_after_start(request, engine, receiver, start_router, fixtures_dir, uniq):
    """`docker swarm init` after the router started: the next resync
    (CACHE_TTL_SECS=1 here) notices it and services route (old code: never,
    until a restart). First in this file: the engine is no swarm yet, and
    the module's swarm fixture, asked for here, makes it one (and leaves it
    at the end)."""
    router = start_router(env={"CACHE_TTL_SECS": "1"})
    router.wait_ready()
    assert router.wait_log("docker synced")[0]["swarm_manager"] is False
    swarm = request.getfixturevalue("swarm")
    repo, name = f"team/late{uniq}", f"late{uniq}"
    service(swarm, name, "--label", f"webhook-router.image={repo}",
            "--label", f"webhook-router.url={receiver.url(f'/late/{uniq}')}")
    try:
        router.wait_log("swarm manager: watching services too", timeout=5)
        until(router, fixtures_dir, repo, "forwarded", timeout=5)
    finally:
        swarm.docker("service", "rm", name, check=False)


def test_service_lifecycle(swarm, receiver, start_router, fixtures_dir, uniq):
    router = start_router()
    router.wait_ready()
    assert router.wait_log("docker synced")[0]["swarm_manager"] is True
    repo, name = f"team/svc{uniq}", f"svc{uniq}"
    service(swarm, name, "--label", f"webhook-router.image={repo}",
            "--label", f"webhook-router.url={receiver.url(f'/svc/{uniq}')}",
            "--label", "com.docker.stack.namespace=shop")
    took = until(router, fixtures_dir, repo, "forwarded")
    print(f"service create -> route live: {took * 1000:.0f} ms")
    routes = [r for r in router.get("/routes")[1]["routes"] if r["repository"] == repo]
    assert routes and routes[0]["sources"][0]["kind"] == "service"
    assert routes[0]["sources"][0]["name"] == name and routes[0]["sources"][0]["stack"] == "shop"

    t0 = time.monotonic()
    swarm.docker("service", "update", "--detach", "--label-add", "webhook-router.tag=v*", name)
    until(router, fixtures_dir, repo, "ignored", tag="latest")
    took = time.monotonic() - t0
    print(f"docker service update -> new route live: {took * 1000:.0f} ms")
    assert took < 1.0 or not LATENCY_CHECKS
    assert decision(router, fixtures_dir, repo, "v2") == "forwarded"

    t0 = time.monotonic()
    swarm.docker("service", "update", "--detach", "--label-rm", "webhook-router.image", name)
    until(router, fixtures_dir, repo, "ignored", tag="v3")
    assert time.monotonic() - t0 < 1.0

    swarm.docker("service", "update", "--detach", "--label-add", f"webhook-router.image={repo}", name)
    until(router, fixtures_dir, repo, "forwarded", tag="v4")
    swarm.docker("service", "rm", name)
    until(router, fixtures_dir, repo, "ignored", tag="v5")
    router.wait_log("route removed", service=name)


def test_replicas_forward_once(swarm, receiver, start_router, fixtures_dir, uniq):
    repo, name, hook = f"team/rep{uniq}", f"rep{uniq}", f"/rep/{uniq}"
    labels = [f"webhook-router.image={repo}", f"webhook-router.url={receiver.url(hook)}"]
    args = ["--replicas", "3"]
    for l in labels:
        args += ["--label", l, "--container-label", l]   # on the service and on each task
    service(swarm, name, *args)
    try:
        wait_until(lambda: len(swarm.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}")
                               .stdout.split()) == 3, 60, 0.2, "3 running tasks")
        router = start_router()
        router.wait_ready()
        routes = [r for r in router.get("/routes")[1]["routes"] if r["repository"] == repo]
        assert len(routes) == 1 and len(routes[0]["sources"]) == 4   # 1 service + 3 tasks
        assert decision(router, fixtures_dir, repo, "v1") == "forwarded"
        receiver.wait_for(hook, 1)
        time.sleep(1.0)
        assert len(receiver.on(hook)) == 1
    finally:
        swarm.docker("service", "rm", name, check=False)
