"""pytest fixtures wiring the real parts of harness.py together."""

import os
import tempfile
import uuid

import pytest

from harness import Engine, Receiver, Registry, Router, free_port

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def fixtures_dir():
    path = os.environ.get("WR_FIXTURES") or os.path.join(HERE, "..", "fixtures")
    assert os.path.isdir(path), f"test fixtures not found at {path}"
    return path


@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("WR_BINARY") or os.path.join(HERE, "..", "..", "build", "debug", "webhook-router")
    assert os.access(path, os.X_OK), f"router binary not found at {path} (set WR_BINARY)"
    return path


@pytest.fixture(scope="session")
def router_port():
    return free_port()


@pytest.fixture(scope="session")
def registry_port():
    return free_port()


@pytest.fixture(scope="session")
def engine(registry_port):
    e = Engine(insecure_registry=f"127.0.0.1:{registry_port}")
    try:
        e.start()
        _measurements.append((f"isolated dockerd start ({e.storage_driver})", e.start_seconds))
        e.import_test_image()
        yield e
    finally:
        e.cleanup()


@pytest.fixture(scope="session")
def registry(registry_port, router_port):
    r = Registry(registry_port, f"http://127.0.0.1:{router_port}/webhook")
    yield r
    r.close()


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, so fixtures can tell a failed test."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


_measurements = []


@pytest.fixture(scope="session")
def measure():
    """measure(what, seconds): a timing printed in the summary at the end of the run."""
    def record(what, seconds):
        _measurements.append((what, seconds))
    return record


def pytest_terminal_summary(terminalreporter):
    if _measurements:
        terminalreporter.write_sep("-", "timings")
        for what, seconds in _measurements:
            terminalreporter.write_line(f"{what}: {seconds * 1000:.0f} ms")


@pytest.fixture
def start_router(request, binary, router_port, engine):
    """start_router(env={...}, docker_host=None) -> Router on the session's router port.
    Stopped with SIGTERM at the end of the test (also when the test failed); it must
    exit 0 with no sanitizer report, else the test errors in teardown. The router's
    log is printed when the test failed."""
    routers = []

    def start(env=None, docker_host=None):
        full = {"DOCKER_HOST": docker_host or engine.host, "DEBOUNCE_MS": "0"}
        full.update(env or {})
        r = Router(binary, router_port, full)
        routers.append(r)
        return r

    yield start
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for r in routers:
            print(f"--- router log (last 80 lines, {len(r.lines)} in all):\n{r.log_tail(80)}")
    errors = []
    for r in routers:
        try:
            r.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)


@pytest.fixture
def containers(engine):
    """create(image_label, url, tag=None) -> container id; removed after the test."""
    made = []

    def create(image_label, url, tag=None, extra_labels=()):
        args = ["create", "--network", "none", "--label", f"webhook-router.image={image_label}",
                "--label", f"webhook-router.url={url}"]
        if tag:
            args += ["--label", f"webhook-router.tag={tag}"]
        for l in extra_labels:
            args += ["--label", l]
        cid = engine.docker(*args, "local/bb:1").stdout.strip()
        made.append(cid)
        return cid

    yield create
    for cid in made:
        engine.docker("rm", "-f", cid, check=False)


@pytest.fixture
def uniq():
    return uuid.uuid4().hex[:10]


@pytest.fixture
def workdir():
    """A scratch directory under /tmp (short paths), removed with its files."""
    d = tempfile.mkdtemp(prefix="wr-work-", dir="/tmp")
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


@pytest.fixture
def made(engine):
    """Container ids a test created; removed after it."""
    ids = []
    yield ids
    for cid in ids:
        engine.docker("rm", "-f", cid, check=False)
