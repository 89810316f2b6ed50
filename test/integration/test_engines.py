"""Several engines into one map, and an engine behind a GET-only proxy."""

import time

import pytest

from harness import Engine, GetOnlyProxy, decision, wait_until, write_auth_file


@pytest.fixture
def engine2(registry_port):
    e = Engine(insecure_registry=f"127.0.0.1:{registry_port}")
    try:
        e.start()
        e.import_test_image()
        yield e
    finally:
        e.cleanup()


def create(engine, repo, url):
    return engine.docker("create", "--network", "none", "--label", f"webhook-router.image={repo}",
                         "--label", f"webhook-router.url={url}", "local/bb:1").stdout.strip()


def test_two_engines_one_map(engine, engine2, receiver, start_router, fixtures_dir, uniq):
    a, b = f"team/ea{uniq}", f"team/eb{uniq}"
    ida = create(engine, a, receiver.url(f"/ea/{uniq}"))
    create(engine2, b, receiver.url(f"/eb/{uniq}"))
    try:
        router = start_router(docker_host=f"{engine.host},{engine2.host}", env={"CACHE_TTL_SECS": "0"})
        router.wait_ready()
        assert router.wait_log("docker synced", n=2)
        assert decision(router, fixtures_dir, a) == "forwarded"
        assert decision(router, fixtures_dir, b) == "forwarded"

        engine2.stop()
        router.wait_log("docker connection lost", engine=engine2.host)
        status, body = router.get("/ready")
        states = {e["engine"]: e["state"] for e in body["docker"]}
        assert states[engine.host] == "live" and states[engine2.host] == "reconnecting"
        assert [e for e in body["docker"] if e["engine"] == engine2.host][0]["error"]
        # The engine that is up keeps changing the map; the one that is down keeps its last routes.
        engine.docker("rm", ida)
        wait_until(lambda: decision(router, fixtures_dir, a) == "ignored", 5, 0.05, "a removed")
        assert decision(router, fixtures_dir, b) == "forwarded"

        engine2.start()
        wait_until(lambda: {e["engine"]: e["state"] for e in router.get("/ready")[1]["docker"]}[engine2.host] == "live",
                   40, 0.1, "engine2 live again")
        c = f"team/ec{uniq}"
        create(engine2, c, receiver.url(f"/ec/{uniq}"))
        wait_until(lambda: decision(router, fixtures_dir, c) == "forwarded", 5, 0.05, "c routed")
        assert decision(router, fixtures_dir, b) == "forwarded"
    finally:
        engine.docker("rm", "-f", ida, check=False)


def test_works_through_get_only_proxy(engine, receiver, start_router, containers, fixtures_dir, uniq):
    repo = f"team/px{uniq}"
    containers(repo, receiver.url(f"/px/{uniq}"))
    proxy = GetOnlyProxy(engine.sock)
    proxy.start()
    try:
        router = start_router(docker_host=proxy.host, env={"CACHE_TTL_SECS": "1"})
        router.wait_ready()
        assert decision(router, fixtures_dir, repo) == "forwarded"
        later = f"team/pl{uniq}"
        containers(later, receiver.url(f"/pl/{uniq}"))
        wait_until(lambda: decision(router, fixtures_dir, later) == "forwarded", 5, 0.05, "event through proxy")
        time.sleep(1.5)   # a background resync went through the proxy too
        methods = {m for m, _ in proxy.seen}
        assert methods == {"GET"}, proxy.seen
        paths = [t for _, t in proxy.seen]
        assert any("/events" in t for t in paths) and any("/containers/json" in t for t in paths)
        assert sum("/containers/json" in t for t in paths) >= 2
    finally:
        proxy.stop()


def test_rename_followed(engine, receiver, start_router, containers, fixtures_dir, uniq):
    """docker rename: /routes shows the new name at once, with no resync to
    help (CACHE_TTL_SECS=0), and routing is unchanged."""
    repo = f"team/rn{uniq}"
    cid = containers(repo, receiver.url(f"/rn/{uniq}"))
    router = start_router(env={"CACHE_TTL_SECS": "0"})
    router.wait_ready()

    def names():
        status, body = router.get("/routes")
        assert status == 200, body
        return {s["name"] for r in body["routes"] if r["repository"] == repo for s in r["sources"]}

    old = engine.docker("inspect", "--format", "{{.Name}}", cid).stdout.strip().lstrip("/")
    assert names() == {old}
    new = f"renamed-{uniq}"
    engine.docker("rename", cid, new)
    wait_until(lambda: names() == {new}, 5, 0.05, "the new name in /routes")
    assert router.wait_log("container renamed", container=new, old_name=old)
    assert decision(router, fixtures_dir, repo) == "forwarded"


def test_credentials_to_a_remote_tcp_engine_warned(start_router, engine, tmp_path):
    """Engine updates send REGISTRY_AUTH_FILE's credentials to the engine
    (X-Registry-Auth): one warn at start for a tcp:// engine that is not on
    loopback, none for the unix socket. (Old code: no warning.)"""
    auth = write_auth_file(str(tmp_path), {"reg.example:5000": ("alice", "pw-secret")})
    remote = "tcp://192.0.2.1:2375"   # TEST-NET-1: never answers
    router = start_router(env={"ENGINE_UPDATES": "1", "REGISTRY_AUTH_FILE": auth},
                          docker_host=f"{remote},{engine.host}")
    msg = ("registry credentials go to this engine in clear with each update "
           "(X-Registry-Auth over plain tcp://): use a unix socket or a loopback proxy")
    router.wait_log("listening")   # the start-up lines are all out
    assert [w["engine"] for w in router.find(msg)] == [remote]
    assert "pw-secret" not in router.log_tail(200)
