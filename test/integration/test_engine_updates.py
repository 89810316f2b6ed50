"""Engine updates (SPEC: Engine updates): a push makes the router recreate a
labelled container itself, keeping its whole configuration, and roll back a
new container that exits or turns unhealthy; a Swarm service is updated
with the pushed digest. Real engine, real registry, images made with
`docker import` of busybox-static (nothing is pulled from the internet)."""

import datetime
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import socket

from harness import BUSYBOX, GetOnlyProxy, Registry, UnixProxy, free_port, manifest_payload, swarm_mode, wait_until


def make_image(engine, ref, marker, cmd='["/bin/sleep","3600"]', extra=()):
    """A busybox image whose /marker differs, so each has its own ID."""
    root = os.path.join(engine.dir, f"img-{marker}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for name in ("sh", "sleep", "cat", "echo", "ls", "true", "false"):
        os.symlink("busybox", os.path.join(root, "bin", name))
    with open(os.path.join(root, "marker"), "w") as f:
        f.write(marker)
    tar = root + ".tar"
    subprocess.run(["tar", "-C", root, "--owner=0", "--group=0", "-cf", tar, "."], check=True)
    args = ["import", "-c", f"CMD {cmd}"]
    for c in extra:
        args += ["-c", c]
    engine.docker(*args, tar, ref)
    return engine.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()


def ts(line):
    """A log line's time in seconds (its "ts" is RFC 3339 with milliseconds)."""
    return datetime.datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()


def inspect(engine, what):
    return json.loads(engine.docker("inspect", what).stdout)[0]


@pytest.fixture
def cleanup(engine):
    things = {"containers": [], "networks": [], "volumes": []}
    yield things
    for name in things["containers"]:
        engine.docker("rm", "-f", "-v", name, check=False)
    for name in things["networks"]:
        engine.docker("network", "rm", name, check=False)
    for name in things["volumes"]:
        engine.docker("volume", "rm", name, check=False)


def labelled(repo, extra=()):
    args = ["--label", f"webhook-router.image={repo}", "--label", "webhook-router.update=true"]
    for l in extra:
        args += ["--label", l]
    return args


def test_off_by_default_only_warns_and_only_gets(engine, registry, start_router, cleanup, uniq, tmp_path):
    repo = f"team/off{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"off1-{uniq}")
    name = f"off{uniq}"
    cleanup["containers"].append(name)
    engine.docker("run", "-d", "--network", "none", "--name", name, *labelled(repo), ref)
    cid = inspect(engine, name)["Id"]
    proxy = GetOnlyProxy(engine.socket)
    proxy.start()
    try:
        router = start_router(docker_host=proxy.host)
        router.wait_ready()
        for i in range(2):
            make_image(engine, ref, f"off{2 + i}-{uniq}")
            engine.docker("push", ref)
            router.wait_log("push matched", repository=repo, n=i + 1, timeout=20)
        time.sleep(0.5)
        warns = router.find("update not done: engine updates are off", container=name)
        assert len(warns) == 1, router.log_tail()
        assert "ENGINE_UPDATES=1" in warns[0]["note"]
        assert not router.find("update started")
        assert all(m == "GET" for m, _ in proxy.seen), proxy.seen
        assert inspect(engine, name)["Id"] == cid
    finally:
        proxy.stop()


def test_container_recreated_with_everything(engine, registry, start_router, cleanup, uniq, measure):
    repo = f"team/app{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    v1 = make_image(engine, ref, f"v1-{uniq}")
    name, na, nb, vol = f"app{uniq}", f"na{uniq}", f"nb{uniq}", f"vol{uniq}"
    cleanup["containers"].append(name)
    cleanup["networks"] += [na, nb]
    cleanup["volumes"].append(vol)
    engine.docker("network", "create", "--internal", na)
    engine.docker("network", "create", "--internal", nb)
    engine.docker("volume", "create", vol)
    port = free_port()
    engine.docker("create", "--name", name, *labelled(repo, ["com.example.keep=yes"]),
                  "-e", "GREETING=hello", "-v", f"{vol}:/named", "-v", "/anon",
                  "--network", na, "--network-alias", "alpha", "--restart", "unless-stopped",
                  "-p", f"127.0.0.1:{port}:8080", "--stop-timeout", "3", ref)
    engine.docker("network", "connect", "--alias", "beta", nb, name)
    engine.docker("start", name)
    engine.docker("exec", name, "sh", "-c", "echo named > /named/f; echo anon > /anon/f")
    old = inspect(engine, name)
    anon = [m["Name"] for m in old["Mounts"] if m["Destination"] == "/anon"][0]

    router = start_router(env={"ENGINE_UPDATES": "1"})
    router.wait_ready()
    engine.docker("push", ref)
    router.wait_log("container already runs the pushed image", container=name, timeout=20)
    v2 = make_image(engine, ref, f"v2-{uniq}")
    engine.docker("push", ref)
    t_push = time.monotonic()
    started = router.wait_log("update started", container=name, n=2, timeout=20)[1]
    done = router.wait_log("container updated", container=name, timeout=60)[0]
    matched = router.find("push matched", repository=repo)[1]
    measure("container update: push matched -> update started", ts(started) - ts(matched))
    for phase in ("pull_ms", "create_ms", "stop_ms", "start_ms", "health_ms", "duration_ms"):
        measure(f"container update {phase}", done[phase] / 1000)
    print("push -> container updated:", time.monotonic() - t_push, done)

    new = inspect(engine, name)
    assert new["Id"] != old["Id"] and new["Image"] == v2 != v1
    assert engine.docker("inspect", old["Id"], check=False).returncode != 0   # the old one is gone
    assert new["State"]["Running"]
    assert new["Config"]["Labels"]["com.example.keep"] == "yes"
    assert new["Config"]["Labels"]["webhook-router.update"] == "true"
    assert "GREETING=hello" in new["Config"]["Env"]
    assert new["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert new["HostConfig"]["PortBindings"] == old["HostConfig"]["PortBindings"]
    assert new["Config"]["StopTimeout"] == 3
    assert new["Config"]["Hostname"] == new["Id"][:12]
    nets = new["NetworkSettings"]["Networks"]
    assert set(nets) == {na, nb}
    assert "alpha" in nets[na]["Aliases"] and "beta" in nets[nb]["Aliases"]
    assert old["Id"][:12] not in (nets[na]["Aliases"] or []) + (nets[nb]["Aliases"] or [])
    assert engine.docker("exec", name, "cat", "/named/f", "/anon/f").stdout.split() == ["named", "anon"]
    assert anon in [m["Name"] for m in new["Mounts"]]
    assert engine.docker("exec", name, "cat", "/marker").stdout == f"v2-{uniq}"
    status, body = router.get("/routes")
    ups = [u for u in body.get("updates", []) if u["name"] == name]
    assert ups and ups[0]["outcome"] == "completed", body

    # The same digest again: nothing changes.
    status, _ = router.post("/webhook", {"events": [{
        "id": f"again-{uniq}", "timestamp": "2026-01-01T00:00:00Z", "action": "push",
        "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "repository": repo, "tag": "latest", "digest": done.get("digest") or "sha256:" + "0" * 64},
        "request": {"host": f"127.0.0.1:{registry.port}", "method": "PUT"}}]},
        {"Content-Type": "application/vnd.docker.distribution.events.v1+json"})
    assert status == 202
    router.wait_log("container already runs the pushed image", container=name, n=2, timeout=20)
    assert inspect(engine, name)["Id"] == new["Id"]


def test_one_follow_up_and_stopped_stays_stopped(engine, start_router, cleanup, fixtures_dir, uniq):
    """Pushes during an update queue one follow-up (the last one wins); a
    stopped container is recreated and left stopped. The registry here sends
    no notifications: the test posts them itself, in push order, so the
    order the router sees is the order of the pushes."""
    reg = Registry(free_port())
    try:
        repo = f"team/fu{uniq}"
        ref = f"{reg.host}/{repo}:latest"

        def push(marker, n):
            image_id = make_image(engine, ref, marker)
            out = engine.docker("push", ref).stdout
            digest = re.search(r"digest: (sha256:[0-9a-f]{64})", out).group(1)
            body = manifest_payload(fixtures_dir, repo, "latest", f"fu{n}-{uniq}", host=reg.host, digest=digest)
            assert router.post("/webhook", body)[0] == 202
            return image_id

        make_image(engine, ref, f"fu1-{uniq}")
        engine.docker("push", ref)
        run, stopped = f"fu{uniq}", f"fus{uniq}"
        cleanup["containers"] += [run, stopped]
        # sleep as PID 1 ignores SIGTERM: each stop takes the whole StopTimeout,
        # long enough for two more pushes to arrive during the first update.
        engine.docker("run", "-d", "--network", "none", "--stop-timeout", "10", "--name", run, *labelled(repo), ref)
        engine.docker("create", "--network", "none", "--name", stopped, *labelled(repo), ref)
        router = start_router(env={"ENGINE_UPDATES": "1"})
        router.wait_ready()
        push(f"fu2-{uniq}", 2)
        router.wait_log("update started", container=run, timeout=20)
        push(f"fu3-{uniq}", 3)
        v4 = push(f"fu4-{uniq}", 4)
        router.wait_log("update queued behind the running one", container=run, timeout=20)
        router.wait_log("update follow-up replaced", container=run, timeout=20)
        router.wait_log("container updated", container=run, n=2, timeout=90)
        time.sleep(1)
        assert len(router.find("update started", container=run)) == 2, router.log_tail()
        now = inspect(engine, run)
        assert now["Image"] == v4 and now["State"]["Running"]   # the last push's image
        # The stopped one: recreated on the newest image, still stopped.
        wait_until(lambda: inspect(engine, stopped)["Image"] == v4, 30, 0.2, "stopped container on v4")
        st = inspect(engine, stopped)
        assert not st["State"]["Running"] and st["State"]["Status"] == "created"
        assert all(not l["running"] for l in router.find("container updated", container=stopped))
    finally:
        reg.close()


@pytest.mark.parametrize("how", ["exits", "unhealthy"])
def test_failed_update_rolls_back(engine, registry, start_router, cleanup, uniq, how):
    repo = f"team/rb{how}{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    v1 = make_image(engine, ref, f"rb1-{uniq}")
    name = f"rb{how}{uniq}"
    cleanup["containers"].append(name)
    engine.docker("run", "-d", "--network", "none", "--name", name, *labelled(repo), ref)
    old = inspect(engine, name)
    router = start_router(env={"ENGINE_UPDATES": "1", "ENGINE_UPDATE_HEALTH_TIMEOUT_SECS": "10"})
    router.wait_ready()
    # v1 pushed while the router listens: the registry's notification comes
    # now, not late from its retry queue; the container already runs it.
    engine.docker("push", ref)
    router.wait_log("container already runs the pushed image", container=name, timeout=20)
    if how == "exits":
        make_image(engine, ref, f"rb2-{uniq}", cmd='["/bin/sh","-c","exit 3"]')
    else:
        make_image(engine, ref, f"rb2-{uniq}",
                   extra=['HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/false"]'])
    engine.docker("push", ref)
    line = router.wait_log("update rolled back", container=name, timeout=60)[0]
    assert line["level"] == "error"
    assert ("exited" in line["error"]) if how == "exits" else ("unhealthy" in line["error"]), line
    now = inspect(engine, name)
    assert now["Id"] == old["Id"] and now["Image"] == v1 and now["State"]["Running"]
    assert len(engine.docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.split()) == 1


@pytest.fixture
def swarm(engine):
    with swarm_mode(engine):
        yield engine


def task_images(engine, name):
    out = engine.docker("service", "ps", "--no-trunc", "--filter", "desired-state=running",
                        "--format", "{{.Image}}", name).stdout
    return out.split()


def test_swarm_service_updated_and_rolled_back(swarm, registry, start_router, uniq, measure):
    repo = f"team/svc{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(swarm, ref, f"s1-{uniq}")
    swarm.docker("push", ref)
    name = f"svc{uniq}"
    swarm.docker("service", "create", "--detach", "--name", name, *labelled(repo),
                 "--update-delay", "0s", "--update-monitor", "2s", "--update-failure-action", "rollback",
                 "--rollback-monitor", "1s", ref)
    try:
        wait_until(lambda: len(task_images(swarm, name)) == 1, 60, 0.2, "service running")
        router = start_router(env={"ENGINE_UPDATES": "1"})
        router.wait_ready()
        make_image(swarm, ref, f"s2-{uniq}")
        swarm.docker("push", ref)
        t0 = time.monotonic()
        done = router.wait_log("service updated", service=name, timeout=120)[-1]
        measure("swarm update: push -> completed (router's duration)", done["duration_ms"] / 1000)
        print("push -> service updated:", time.monotonic() - t0, done)
        digest = done["digest"]
        assert digest and done["image"] == f"{ref}@{digest}"
        wait_until(lambda: any(digest in i for i in task_images(swarm, name)), 30, 0.2, "tasks on the new digest")
        spec = json.loads(swarm.docker("service", "inspect", name).stdout)[0]["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"].endswith("@" + digest)

        # A new image that exits at once: the service rolls itself back.
        make_image(swarm, ref, f"s3-{uniq}", cmd='["/bin/sh","-c","exit 3"]')
        swarm.docker("push", ref)
        line = router.wait_log("service update rolled back", service=name, timeout=180)[-1]
        assert line["level"] == "error" and line["error"] == "UpdateStatus rollback_completed", line
        assert "exit" in (line.get("task_error") or ""), line   # the task's own error, not only the state
        # Re-reading the service at each of its events logs its routes at info once, not each time.
        assert len([l for l in router.find("service routes set", service=name) if l["level"] == "info"]) <= 1
        status, body = router.get("/metrics")
        text = body.decode() if isinstance(body, bytes) else body
        assert 'webhook_router_updates_total{kind="service",outcome="completed"} 1' in text
        assert 'webhook_router_updates_total{kind="service",outcome="rolled_back"} 1' in text
    finally:
        swarm.docker("service", "rm", name, check=False)


def test_failed_pull_changes_nothing(engine, registry, start_router, cleanup, uniq, fixtures_dir):
    from harness import manifest_payload
    repo = f"team/np{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"np1-{uniq}")
    name = f"np{uniq}"
    cleanup["containers"].append(name)
    engine.docker("run", "-d", "--network", "none", "--name", name, *labelled(repo), ref)
    old = inspect(engine, name)
    router = start_router(env={"ENGINE_UPDATES": "1"})
    router.wait_ready()
    # A push notification for a tag the registry does not have: the pull fails.
    status, _ = router.post("/webhook", manifest_payload(fixtures_dir, repo, "latest", f"np-{uniq}",
                                                         host=f"127.0.0.1:{registry.port}"))
    assert status == 202
    line = router.wait_log("update failed", container=name, timeout=30)[0]
    assert line["level"] == "error" and line["error"] == "pull", line
    # The engine's own words, not only its status.
    assert "manifest unknown" in line["cause"] or "not found" in line["cause"], line
    now = inspect(engine, name)
    assert now["Id"] == old["Id"] and now["State"]["Running"] and now["Name"] == "/" + name
    status, body = router.get("/routes")
    assert [u["outcome"] for u in body["updates"] if u["name"] == name] == ["failed"]


def test_auto_remove_container_is_not_touched(engine, registry, start_router, cleanup, uniq):
    repo = f"team/rm{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"rm1-{uniq}")
    name = f"rm{uniq}"
    cleanup["containers"].append(name)
    engine.docker("run", "-d", "--rm", "--network", "none", "--name", name, *labelled(repo), ref)
    old = inspect(engine, name)
    router = start_router(env={"ENGINE_UPDATES": "1"})
    router.wait_ready()
    make_image(engine, ref, f"rm2-{uniq}")
    engine.docker("push", ref)
    line = router.wait_log("update failed", container=name, timeout=30)[0]
    assert "--rm" in line["cause"], line
    assert inspect(engine, name)["Id"] == old["Id"]


def push_digest(engine, ref):
    out = engine.docker("push", ref).stdout
    return re.search(r"digest: (sha256:[0-9a-f]{64})", out).group(1)


def test_only_own_registry_repository_tag_and_pushed_digest(engine, registry, start_router, cleanup, fixtures_dir,
                                                            uniq):
    """A host-less label matches pushes from any registry, but an update only
    ever installs the object's own repository, at its own tag, by the pushed
    digest (SPEC: Engine updates)."""
    own = Registry(free_port())   # sends no notifications: the test posts them
    try:
        repo = f"team/own{uniq}"
        ref = f"{own.host}/{repo}:latest"
        v1 = make_image(engine, ref, f"own1-{uniq}")
        engine.docker("push", ref)
        name = f"own{uniq}"
        cleanup["containers"].append(name)
        engine.docker("run", "-d", "--network", "none", "--stop-timeout", "1", "--name", name, *labelled(repo), ref)
        router = start_router(env={"ENGINE_UPDATES": "1"})
        router.wait_ready()
        # The same repository on another registry: its push (the session
        # registry notifies the router) and one unauthenticated POST naming it.
        other = f"127.0.0.1:{registry.port}/{repo}:latest"
        make_image(engine, other, f"other-{uniq}")
        engine.docker("push", other)
        router.wait_log("update skipped", container=name, timeout=20)
        assert router.post("/webhook", {"image": other})[0] == 202
        router.wait_log("update skipped", container=name, n=2, timeout=20)
        # Another tag of its own repository, without a tag label.
        tagged = f"{own.host}/{repo}:pr-1"
        engine.docker("tag", ref, tagged)
        d = push_digest(engine, tagged)
        router.post("/webhook", manifest_payload(fixtures_dir, repo, "pr-1", f"pr1-{uniq}", host=own.host, digest=d))
        line = router.wait_log("update skipped", container=name, n=3, timeout=20)[2]
        assert "pr-1" in line["reason"], line
        assert inspect(engine, name)["Image"] == v1
        assert not router.find("container updated")
        # By digest: v2 is pushed, the tag moves on to v3, then v2's notification comes.
        v2 = make_image(engine, ref, f"own2-{uniq}")
        d2 = push_digest(engine, ref)
        make_image(engine, ref, f"own3-{uniq}")
        engine.docker("push", ref)
        router.post("/webhook", manifest_payload(fixtures_dir, repo, "latest", f"own2-{uniq}", host=own.host, digest=d2))
        router.wait_log("container updated", container=name, timeout=60)
        now = inspect(engine, name)
        assert now["Image"] == v2 and now["Config"]["Image"] == f"{ref}@{d2}" and now["State"]["Running"]
    finally:
        own.close()


def test_leftover_aside_container_is_never_updated(engine, registry, start_router, cleanup, uniq):
    """A container an update renamed aside (<name>-old-<id>) takes no updates;
    here its name went to a container that does not replace it, so the
    start-up check leaves both as they are."""
    repo = f"team/aside{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"as1-{uniq}")
    name = f"as{uniq}"
    engine.docker("create", "--network", "none", "--name", name, *labelled(repo), ref)
    cid = inspect(engine, name)["Id"]
    aside = f"{name}-old-{cid[:12]}"
    engine.docker("rename", name, aside)
    cleanup["containers"] += [aside, name]
    engine.docker("create", "--network", "none", "--name", name, ref)
    router = start_router(env={"ENGINE_UPDATES": "1"})
    router.wait_ready()
    router.wait_log("unfinished update left as found", container=name, timeout=20)
    make_image(engine, ref, f"as2-{uniq}")
    engine.docker("push", ref)
    router.wait_log("push matched", repository=repo, timeout=20)
    time.sleep(2)
    assert not router.find("update started"), router.log_tail()
    assert inspect(engine, aside)["Id"] == cid


def test_sigterm_mid_recreate_finishes_it(engine, registry, start_router, cleanup, uniq):
    """SIGTERM while a container is being recreated: the router lets the
    update reach a safe point before it exits; the old container's restart
    policy is `no` while it is set aside."""
    repo = f"team/term{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"t1-{uniq}")
    name = f"term{uniq}"
    cleanup["containers"].append(name)
    # sleep as PID 1 ignores SIGTERM: the stop takes the whole StopTimeout.
    engine.docker("run", "-d", "--network", "none", "--stop-timeout", "3", "--restart", "unless-stopped",
                  "--name", name, *labelled(repo), ref)
    old = inspect(engine, name)
    aside = f"{name}-old-{old['Id'][:12]}"
    router = start_router(env={"ENGINE_UPDATES": "1"})
    router.wait_ready()
    v2 = make_image(engine, ref, f"t2-{uniq}")
    engine.docker("push", ref)
    cleanup["containers"].append(aside)

    def aside_policy():
        r = engine.docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", aside, check=False)
        return r.returncode == 0 and r.stdout.strip() == "no"
    wait_until(aside_policy, 20, 0.05, "the aside container's restart policy set to no")
    t0 = time.monotonic()
    router.stop(timeout=30)
    print("SIGTERM -> exit:", time.monotonic() - t0)
    assert router.find("container updated", container=name), router.log_tail()
    now = inspect(engine, name)
    assert now["Image"] == v2 and now["State"]["Running"]
    assert now["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert engine.docker("inspect", aside, check=False).returncode != 0


def test_unfinished_recreate_is_undone_at_start(engine, registry, start_router, cleanup, uniq):
    """A recreate the router did not finish (killed: the old container set
    aside and stopped, the new one created, never started): a router that
    starts puts the old one back, with one warn."""
    repo = f"team/unf{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    v1 = make_image(engine, ref, f"u1-{uniq}")
    name = f"unf{uniq}"
    cleanup["containers"].append(name)
    engine.docker("run", "-d", "--network", "none", "--stop-timeout", "1", "--restart", "always",
                  "--name", name, *labelled(repo), ref)
    old = inspect(engine, name)
    aside = f"{name}-old-{old['Id'][:12]}"
    cleanup["containers"].append(aside)
    make_image(engine, ref, f"u2-{uniq}")
    engine.docker("rename", name, aside)
    engine.docker("create", "--network", "none", "--restart", "always", "--name", name,
                  *labelled(repo, [f"webhook-router.replaces={old['Id']}"]), ref)
    engine.docker("update", "--restart", "no", aside)
    engine.docker("stop", aside)
    router = start_router(env={"ENGINE_UPDATES": "1"})
    router.wait_ready()
    line = router.wait_log("unfinished update undone", container=name, timeout=30)[0]
    assert line["level"] == "warn", line
    now = inspect(engine, name)
    assert now["Id"] == old["Id"] and now["Image"] == v1 and now["State"]["Running"]
    assert now["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert len(engine.docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.split()) == 1
    assert len(router.find("unfinished update undone")) == 1


def test_cleanup_removes_the_old_image_when_unused(engine, registry, start_router, cleanup, uniq):
    """ENGINE_UPDATE_CLEANUP=1: after a successful update the old image goes
    when nothing else uses it (one info line with the bytes freed); an image
    another container still uses stays."""
    repo = f"team/cl{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    v1 = make_image(engine, ref, f"cl1-{uniq}")
    name, other = f"cl{uniq}", f"clo{uniq}"
    cleanup["containers"] += [name, other]
    engine.docker("run", "-d", "--network", "none", "--stop-timeout", "1", "--name", name, *labelled(repo), ref)
    router = start_router(env={"ENGINE_UPDATES": "1", "ENGINE_UPDATE_CLEANUP": "1"})
    router.wait_ready()
    make_image(engine, ref, f"cl2-{uniq}")
    engine.docker("push", ref)
    router.wait_log("container updated", container=name, timeout=60)
    line = router.wait_log("old image removed", container=name, timeout=20)[0]
    assert line["level"] == "info" and line["image_id"] == v1 and line["bytes_freed"] > 0, line
    assert engine.docker("image", "inspect", v1, check=False).returncode != 0
    # Another container on the image being replaced: the image stays.
    v2 = inspect(engine, name)["Image"]
    engine.docker("create", "--network", "none", "--name", other, v2)
    make_image(engine, ref, f"cl3-{uniq}")
    engine.docker("push", ref)
    router.wait_log("container updated", container=name, n=2, timeout=60)
    router.wait_log("old image kept", container=name, timeout=20)
    assert engine.docker("image", "inspect", v2, check=False).returncode == 0


class AwayProxy(UnixProxy):
    """The engine's socket as tcp://, which a test can take away for a while
    (every connection cut, new ones closed at once), as a dockerd restart
    does."""

    away_until = 0.0

    def _request(self, client, head):
        if time.monotonic() < self.away_until:
            client.close()
            return
        self._bridge(client, head)

    def go_away(self, secs):
        self.away_until = time.monotonic() + secs
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_rollback_waits_for_the_engine(engine, registry, start_router, cleanup, uniq):
    """The engine goes away as a new container fails: the rollback's steps
    are retried until it is back, and `update rolled back` is logged only
    when the old container runs again under its name."""
    repo = f"team/away{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    v1 = make_image(engine, ref, f"aw1-{uniq}")
    name = f"away{uniq}"
    cleanup["containers"].append(name)
    engine.docker("run", "-d", "--network", "none", "--stop-timeout", "1", "--name", name, *labelled(repo), ref)
    old = inspect(engine, name)
    cleanup["containers"].append(f"{name}-old-{old['Id'][:12]}")
    proxy = AwayProxy(engine.socket)
    proxy.start()
    try:
        router = start_router(env={"ENGINE_UPDATES": "1"}, docker_host=proxy.host)
        router.wait_ready()
        make_image(engine, ref, f"aw2-{uniq}", cmd='["/bin/sh","-c","exit 3"]')
        engine.docker("push", ref)

        def new_one_exited():
            r = engine.docker("inspect", "-f", "{{.Id}} {{.State.Status}}", name, check=False)
            return r.returncode == 0 and r.stdout.split() == [r.stdout.split()[0], "exited"] \
                and r.stdout.split()[0] != old["Id"]
        # The router looks at the new container 2 s after starting it: the
        # engine is gone by then, for 3 s.
        wait_until(new_one_exited, 30, 0.02, "the new container exited")
        proxy.go_away(3)
        line = router.wait_log("update rolled back", container=name, timeout=60)[0]
        now = inspect(engine, name)
        assert now["Id"] == old["Id"] and now["Image"] == v1 and now["State"]["Running"], (line, router.log_tail())
        assert len(engine.docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.split()) == 1
    finally:
        proxy.stop()
