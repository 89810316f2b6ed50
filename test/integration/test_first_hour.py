"""A newcomer's mistakes are named (issue 21): a bad setting stops start-up
with one JSON line, a misspelt setting or label key is warned about, and the
containers whose labels were ignored are listed in /routes."""

import json
import os
import shutil
import subprocess
import tempfile
import uuid

from harness import VALGRIND, wait_until


def run_once(binary, env, timeout=10, prefix=()):
    full = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "LOG_FORMAT")}
    full.update(env)
    return subprocess.run([*prefix, binary], env=full, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_startup_errors_are_json_lines(binary):
    # Before: "webhook-router: LISTEN_PORT: expected ..." as plain text.
    r = run_once(binary, {"LISTEN_PORT": "abc"})
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = json.loads(lines[0])
    assert line["level"] == "error" and line["msg"] == "invalid configuration"
    assert line["error"].startswith("LISTEN_PORT: expected an integer 1-65535")

    # REGISTRY_AUTH_FILE that cannot be read: a directory, and (as the image's
    # uid 10001, when the tests run as root) `docker login`'s mode-0600 file.
    d = tempfile.mkdtemp(prefix="wr-first-", dir="/tmp")
    try:
        r = run_once(binary, {"REGISTRY_AUTH_FILE": d})
        assert r.returncode == 2
        line = json.loads(r.stderr)
        assert line["error"].startswith("REGISTRY_AUTH_FILE: expected a readable file")
        if os.geteuid() == 0 and shutil.which("setpriv") and not VALGRIND:
            os.chmod(d, 0o755)
            auth = os.path.join(d, "config.json")
            with open(auth, "w") as f:
                f.write('{"auths":{}}')
            os.chmod(auth, 0o600)
            # A copy uid 10001 can run wherever the build tree is.
            exe = shutil.copy(binary, os.path.join(d, "webhook-router"))
            r = run_once(exe, {"REGISTRY_AUTH_FILE": auth},
                         prefix=("setpriv", "--reuid", "10001", "--regid", "10001", "--clear-groups"))
            assert r.returncode == 2, r.stderr
            line = json.loads(r.stderr)
            assert line["error"].endswith(f'cannot read "{auth}": Permission denied'), line
    finally:
        shutil.rmtree(d)

    # LOG_FORMAT=text asks for the human form, wherever it is in the environment.
    r = run_once(binary, {"LISTEN_PORT": "abc", "LOG_FORMAT": "text"})
    assert r.returncode == 2 and not r.stderr.startswith("{") and "LISTEN_PORT" in r.stderr


def test_settings_named_at_start(start_router):
    token = uuid.uuid4().hex
    router = start_router(env={"ENGINE_UPDATE": "1", "POLL_INTERVALL": "5m", "POLL_INTERVAL": "300",
                               "FORWARD_TIMEOUT": "5", "WEBHOOK_TOKEN": token})
    start = router.find("starting")[0]
    settings = start["settings"].split()
    assert "POLL_INTERVAL=300s" in settings and "WEBHOOK_TOKEN=set" in settings
    assert "LOG_LEVEL=debug" in settings          # the harness's
    assert token not in json.dumps(router.lines)
    warned = {l["variable"]: l.get("did_you_mean") for l in router.find("unknown setting ignored (see --help for the names)")}
    want = {"ENGINE_UPDATE": "ENGINE_UPDATES", "POLL_INTERVALL": "POLL_INTERVAL", "FORWARD_TIMEOUT": None}
    assert {k: warned.get(k, "(none)") for k in want} == want, warned


def test_ignored_labels_listed(engine, start_router, uniq):
    name = f"typo-{uniq}"
    engine.docker("create", "--network", "none", "--name", name, "--label", "webhook-router.images=team/x",
                  "--label", "webhook-router.url=http://127.0.0.1:9/hook/secret", "local/bb:1")
    try:
        router = start_router()
        router.wait_ready()
        warn = router.wait_log("labels ignored", container=name)[0]
        assert "did you mean webhook-router.image?" in warn["error"]

        def ignored():
            body = router.get("/routes")[1]
            return [i for i in body["ignored"] if i["name"] == name]
        got = wait_until(ignored, 10, 0.05, "/routes to list the ignored container")
        assert got[0]["kind"] == "container"
        assert got[0]["reason"].startswith("unknown label webhook-router.images (did you mean "
                                           "webhook-router.image?); webhook-router.image is missing")
        assert "secret" not in json.dumps(router.get("/routes")[1])
    finally:
        engine.docker("rm", "-f", name, check=False)
