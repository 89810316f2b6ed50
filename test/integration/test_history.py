"""Delivery history and deploy confirmation (SPEC: Deploy confirmation and
history; Operational endpoints, ADMIN_TOKEN) against the real engine and
registry: the test plays Portainer itself (pull, remove, run with the same
labels) after the router's POST, and reads GET /history."""

import base64
import json

from harness import TIME_FACTOR, manifest_payload, push_variant, wait_until


def history(router, query="", headers=None):
    status, body = router.request("GET", "/history" + query, headers=headers)
    assert status == 200, body
    return body["entries"]


def wait_outcome(router, repo, outcome, timeout):
    def done():
        es = [e for e in history(router, f"?repository={repo}") if e["outcome"] == outcome]
        return es or None
    return wait_until(done, timeout * TIME_FACTOR, 0.1, f"a {outcome} entry for {repo}")


def labels(image, url):
    return ["--label", f"webhook-router.image={image}", "--label", f"webhook-router.url={url}"]


def test_redeploy_confirmed_when_the_stack_runs_the_digest(engine, registry, receiver, start_router, uniq):
    host = f"127.0.0.1:{registry.port}"
    repo = f"team/hist{uniq}"
    ref = f"{host}/{repo}:latest"
    path = f"/stack/{uniq}"
    name = f"hist{uniq}"
    # The stack as it was: some older image, carrying the route's labels.
    engine.docker("run", "-d", "--network", "none", "--name", name, *labels(f"{host}/{repo}", receiver.url(path)),
                  "local/bb:1")
    try:
        router = start_router(env={"DEPLOY_CONFIRM_SECS": "60"})
        router.wait_ready()
        digest = push_variant(engine, host, repo, "latest", f"h{uniq}")
        receiver.wait_for(path, 1, timeout=20 * TIME_FACTOR)
        [e] = wait_outcome(router, repo, "delivered", 10)
        assert e["digest"] == digest and e["action"] == "redeploy" and e["status"] == 204
        assert e["objects"] == name and e["attempts"] == 1 and e["deployed_ms"] is None
        assert e["target"].startswith(f"http://127.0.0.1:{receiver.port}/***#") and uniq not in e["target"]
        # Portainer's part: pull, remove, run again with the same labels.
        engine.docker("pull", ref)
        engine.docker("rm", "-f", name)
        engine.docker("run", "-d", "--network", "none", "--name", name,
                      *labels(f"{host}/{repo}", receiver.url(path)), ref)
        [e] = wait_outcome(router, repo, "deployed", 10)
        assert e["deployed_ms"] > 0 and e["error"] is None
        line = router.wait_log("redeploy confirmed", repository=repo)[0]
        assert line["container"] == name and line["digest"] == digest
        status, metrics = router.get("/metrics")
        assert b"webhook_router_deployed_seconds_count 1" in metrics
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_accepted_but_nothing_happens_is_unconfirmed(engine, receiver, start_router, containers, fixtures_dir,
                                                     uniq):
    repo = f"team/idle{uniq}"
    path = f"/idle/{uniq}"
    containers(f"127.0.0.1:5000/{repo}", receiver.url(path))
    router = start_router(env={"DEPLOY_CONFIRM_SECS": "3"})
    router.wait_ready()
    status, _ = router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"idle-{uniq}"))
    assert status == 202
    receiver.wait_for(path, 1, timeout=10 * TIME_FACTOR)
    [e] = wait_outcome(router, repo, "unconfirmed", 8)
    assert e["event_id"] == f"idle-{uniq}" and e["status"] == 204
    assert "3 s" in e["error"]
    line = router.wait_log("redeploy unconfirmed: no object of the route runs the pushed image", repository=repo)[0]
    assert line["digest"] == e["digest"] and "local/bb:1" in line["running"]
    assert line["level"] == "warn"


def test_failing_target_and_admin_token(receiver, start_router, containers, fixtures_dir, uniq):
    repo = f"team/fail{uniq}"
    path = f"/fail/{uniq}"
    receiver.script[path] = [500, 502]
    containers(f"127.0.0.1:5000/{repo}", receiver.url(path))
    token = f"adm-{uniq}"
    router = start_router(env={"FORWARD_RETRIES": "1", "ADMIN_TOKEN": token})
    router.wait_ready()
    router.post("/webhook", manifest_payload(fixtures_dir, repo, "v1", f"fail-{uniq}"))
    bearer = {"Authorization": f"Bearer {token}"}
    e = wait_until(lambda: [x for x in history(router, f"?outcome=failed&repository={repo}", bearer)],
                   10 * TIME_FACTOR, 0.1,
                   "a failed entry")[0]
    assert e["status"] == 502 and e["attempts"] == 2 and e["error"] == "HTTP 502"
    assert e["duration_ms"] >= 0

    # ADMIN_TOKEN: 401 with a Basic challenge without it; Basic with any user works; health stays open.
    for p in ("/history", "/status", "/", "/routes", "/metrics"):
        c = router.request("GET", p)
        assert c[0] == 401, p
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=5)
    conn.request("GET", "/status")
    r = conn.getresponse()
    r.read()
    assert r.getheader("WWW-Authenticate") == 'Basic realm="webhook-router"'
    conn.close()
    basic = {"Authorization": "Basic " + base64.b64encode(f"anyone:{token}".encode()).decode()}
    assert router.request("GET", "/status", headers=basic)[0] == 200
    assert router.request("GET", "/metrics", headers=basic)[0] == 200
    assert router.request("GET", "/history", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert router.get("/health")[0] == 200 and router.get("/ready")[0] == 200
    assert not router.find("ADMIN_TOKEN is not set: /status, /history, /routes and /metrics are open to anyone "
                           "who can reach the port")
    assert token not in json.dumps(router.lines)
    assert router.request("GET", "/history?outcome=bogus", headers=bearer)[0] == 400


HOSTILE_ID = "<script>alert(1)</script><img src=x onerror=alert(2)>"
HOSTILE_LABEL = "<img src=x onerror=alert(3)><script>alert(4)</script>"


def test_status_page_in_a_real_browser(engine, receiver, start_router, containers, fixtures_dir, uniq, tmp_path):
    """Chromium (headless, a fresh profile) loads /status: the content is
    there, hostile strings from an event id and a label value stay text."""
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    ok_repo, bad_repo = f"team/web{uniq}", f"team/api{uniq}"
    containers(f"127.0.0.1:5000/{ok_repo}", receiver.url(f"/ok/{uniq}"),
               extra_labels=[f"com.docker.compose.project={HOSTILE_LABEL}"])
    containers(f"127.0.0.1:5000/{bad_repo}", receiver.url(f"/bad/{uniq}"), tag="v*")
    receiver.script[f"/bad/{uniq}"] = [503, 503]
    router = start_router(env={"FORWARD_RETRIES": "1", "DEPLOY_CONFIRM_SECS": "300"})
    router.wait_ready()
    router.post("/webhook", manifest_payload(fixtures_dir, ok_repo, "latest", HOSTILE_ID))
    router.post("/webhook", manifest_payload(fixtures_dir, bad_repo, "v2", f"api-{uniq}"))
    wait_until(lambda: {e["outcome"] for e in history(router)} >= {"delivered", "failed"}, 10 * TIME_FACTOR, 0.1,
               "a delivered and a failed entry")

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(20 * TIME_FACTOR)
        driver.get(f"http://127.0.0.1:{router.port}/status")
        assert driver.title == "webhook-router status"
        body = driver.find_element(By.TAG_NAME, "body").text
        for want in ("Engines", "Routes", "Target health", "Latest pushes", "live", ok_repo, bad_repo,
                     "delivered", "failed", "HTTP 503", "1 in a row", HOSTILE_ID, HOSTILE_LABEL):
            assert want in body, want
        # The planted markup is text: no dialog, no element made from it.
        try:
            driver.switch_to.alert
            raise AssertionError("an alert opened")
        except NoAlertPresentException:
            pass
        assert driver.find_elements(By.TAG_NAME, "script") == []
        assert driver.find_elements(By.TAG_NAME, "img") == []
        # Outcomes are coloured; the exact time is on hover.
        failed = driver.find_elements(By.CSS_SELECTOR, "span.o-failed")[0]
        assert failed.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        assert driver.find_elements(By.CSS_SELECTOR, "time[title]")
        driver.save_screenshot(str(tmp_path / "status.png"))
        driver.set_window_size(390, 844)   # a phone
        driver.save_screenshot(str(tmp_path / "status-phone.png"))
        print(f"screenshots: {tmp_path / 'status.png'} {tmp_path / 'status-phone.png'}")
    finally:
        driver.quit()


def test_engine_update_shows_deployed(engine, registry, start_router, uniq):
    from test_engine_updates import make_image
    repo = f"team/upd{uniq}"
    ref = f"127.0.0.1:{registry.port}/{repo}:latest"
    make_image(engine, ref, f"u1-{uniq}")
    name = f"upd{uniq}"
    engine.docker("run", "-d", "--network", "none", "--name", name, "--label", f"webhook-router.image={repo}",
                  "--label", "webhook-router.update=true", ref)
    try:
        router = start_router(env={"ENGINE_UPDATES": "1"})
        router.wait_ready()
        make_image(engine, ref, f"u2-{uniq}")
        engine.docker("push", ref)
        [e] = wait_outcome(router, repo, "deployed", 30)
        assert e["action"] == "update" and e["target"] == f"container {name}" and e["objects"] == name
        assert e["deployed_ms"] > 0 and e["error"] is None
    finally:
        engine.docker("rm", "-f", name, check=False)
