"""A real engine whose /events stream is cut every second for a minute while
labelled containers come and go: the map stays exact and the router keeps
answering. (Garbage and stalls from an engine are in
test/unit/test_docker_watch.c, against a fake one.)"""

import random
import threading
import time

from harness import LATENCY_CHECKS, UnixProxy, wait_until

CHURN_SECONDS = 60
CUT_AFTER = 1.0


class CuttingProxy(UnixProxy):
    """Passes everything through, but cuts each /events connection one second
    after it started - as a flaky socket proxy or an engine restart would."""

    def __init__(self, sock_path):
        super().__init__(sock_path)
        self.cuts = 0
        self.cutting = True

    def _request(self, client, head):
        self._bridge(client, head)
        if b"/events" in head.split(b"\r\n", 1)[0] and self.cutting:
            threading.Timer(CUT_AFTER, self._cut, args=(client,)).start()

    def _cut(self, client):
        if not self.cutting:
            return
        try:
            client.shutdown(2)
        except OSError:
            return
        with self.lock:
            self.cuts += 1


def labelled(engine):
    out = engine.docker("ps", "-a", "--no-trunc", "--filter", "label=webhook-router.image",
                        "--format", "{{.ID}}").stdout.split()
    return set(out)


def routed(router):
    status, body = router.get("/routes")
    assert status == 200, body
    return {s["id"] for r in body["routes"] for s in r["sources"]}


def test_events_cut_every_second_for_a_minute(engine, start_router, receiver, uniq):
    proxy = CuttingProxy(engine.sock)
    proxy.start()
    mine = []
    try:
        router = start_router(docker_host=proxy.host, env={"CACHE_TTL_SECS": "0"})
        router.wait_ready()
        rng = random.Random(uniq)
        worst_health, probes, changes = 0.0, 0, 0
        t_end = time.monotonic() + CHURN_SECONDS
        while time.monotonic() < t_end:
            if mine and (len(mine) > 12 or rng.random() < 0.4):
                cid = mine.pop(rng.randrange(len(mine)))
                engine.docker("rm", "-f", cid)
            else:
                n = len(mine)
                cid = engine.docker("create", "--network", "none",
                                    "--label", f"webhook-router.image=team/churn{uniq}-{n}",
                                    "--label", f"webhook-router.url={receiver.url(f'/churn/{uniq}/{n}')}",
                                    "local/bb:1").stdout.strip()
                mine.append(cid)
            changes += 1
            for _ in range(3):
                t0 = time.monotonic()
                status, _ = router.get("/health")
                worst_health = max(worst_health, time.monotonic() - t0)
                probes += 1
                assert status == 200
                time.sleep(0.05)

        # Still being cut: within a couple of reconnects the map is exactly
        # what the engine has.
        want = labelled(engine)
        wait_until(lambda: routed(router) == want, 15, 0.1, "the map to match the engine while being cut")
        proxy.cutting = False
        reconnects = len(router.find("docker connection lost"))
        syncs = len(router.find("docker synced"))
        print(f"\n{CHURN_SECONDS} s of churn: {changes} container creates/removes, {proxy.cuts} /events cuts, "
              f"{reconnects} reconnects, {syncs} syncs; {probes} /health probes, slowest "
              f"{worst_health * 1000:.1f} ms; {len(want)} labelled containers at the end, all routed")
        assert proxy.cuts >= CHURN_SECONDS // 3, proxy.cuts
        assert reconnects >= proxy.cuts // 2
        assert worst_health < 0.5 or not LATENCY_CHECKS, f"/health took {worst_health * 1000:.0f} ms"
        assert router.proc.poll() is None
        # One more change after the cutting stopped goes through by event.
        cid = engine.docker("create", "--network", "none", "--label", f"webhook-router.image=team/last{uniq}",
                            "--label", f"webhook-router.url={receiver.url(f'/last/{uniq}')}",
                            "local/bb:1").stdout.strip()
        mine.append(cid)
        wait_until(lambda: cid in routed(router), 10, 0.05, "the last container routed")
    finally:
        proxy.cutting = False
        for cid in mine:
            engine.docker("rm", "-f", cid, check=False)
        proxy.stop()
