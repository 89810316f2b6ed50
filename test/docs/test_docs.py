"""The docs' shell snippets, run as written against the real engine and
registry the integration harness starts (issue 21: a doc that breaks fails
CI).

Every ```sh block of README.md and docs/operating.md carries a marker on the
line before it: `<!-- doc-test: run -->` (run here, in order, each with
bash -euo pipefail from the repository root), or
`<!-- doc-test: skip: <why> -->` (network, sudo, the compose plugin, a
command that follows forever...). An unmarked block fails the check, so
each new snippet is either run or has its reason written next to it.

What the docs name on the operator's host is mapped to what the test
engine has, and nothing else is changed:
  /var/run/docker.sock  -> the test engine's socket, on the host side of
                           `-v` and in `stat` (and DOCKER_HOST for the CLI)
  127.0.0.1:5000        -> the test registry (a push of team/myapp:latest is made first)
  3000                  -> a free port (the router runs with --network host)
"""

import os
import re
import subprocess
from dataclasses import dataclass

import pytest

from harness import VALGRIND

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOCS = ["README.md", "docs/operating.md"]
FENCE = re.compile(r"^(\s*)```(sh|bash|shell|console)\s*$")
MARK = re.compile(r"^\s*<!-- doc-test: (?:(run)|skip: (.+?)) -->\s*$")


@dataclass
class Snippet:
    doc: str
    line: int
    run: bool
    skip_reason: str
    marked: bool
    body: str

    def where(self):
        return f"{self.doc}:{self.line}"


def snippets():
    out = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc)) as f:
            lines = f.read().splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            indent = m.group(1)
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            body = "\n".join(l[len(indent):] if l.startswith(indent) else l for l in lines[i + 1:j])
            mark = MARK.match(lines[i - 1]) if i else None
            out.append(Snippet(doc, i + 1, bool(mark and mark.group(1)), mark.group(2) if mark else None,
                               bool(mark), body))
            i = j + 1
    return out


def map_to_test(body, subst):
    """Each (doc's text, test's text) pair of subst replaced in one pass, a
    number only where it stands alone: a port put in for one pair is never
    taken for another's text (the registry on port 43000 is not "3000")."""
    pattern = re.compile("|".join(rf"(?<!\d){re.escape(a)}(?!\d)" if a[-1].isdigit() else re.escape(a)
                                  for a, _ in subst))
    table = dict(subst)
    return pattern.sub(lambda m: table[m.group(0)], body)


def test_mapping_leaves_what_it_put_in():
    subst = [("127.0.0.1:5000", "127.0.0.1:43000"), ("3000", "38123")]
    assert map_to_test("curl 127.0.0.1:5000/v2/ http://127.0.0.1:3000/ready -e LISTEN_PORT=3000",
                       subst) == "curl 127.0.0.1:43000/v2/ http://127.0.0.1:38123/ready -e LISTEN_PORT=38123"
    assert map_to_test("30000 13000 3000", subst) == "30000 13000 38123"


def test_every_snippet_is_marked():
    all_ = snippets()
    unmarked = [s.where() for s in all_ if not s.marked]
    assert not unmarked, ("shell blocks without a <!-- doc-test: run --> or <!-- doc-test: skip: why --> "
                          f"marker: {unmarked}")
    print("\n" + "\n".join(f"{s.where()}: " + ("run" if s.run else f"skipped: {s.skip_reason}") for s in all_))
    assert any(s.run for s in all_)


@pytest.mark.skipif(VALGRIND, reason="the snippets run the image's static binary in a container, not under valgrind")
def test_run_snippets(engine, registry, router_port):
    # What the docs' commands expect to find: an image to ask the registry about.
    ref = f"127.0.0.1:{registry.port}/team/myapp:latest"
    engine.docker("tag", "local/bb:1", ref)
    pushed = engine.docker("push", ref).stdout
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed).group(1)
    subst = [("-v /var/run/docker.sock:", f"-v {engine.sock}:"),
             ("stat -c %g /var/run/docker.sock", f"stat -c %g {engine.sock}"),
             ("127.0.0.1:5000", f"127.0.0.1:{registry.port}"),
             ("3000", str(router_port))]
    env = dict(os.environ, DOCKER_HOST=engine.host)
    for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(k, None)
    engine.docker("rm", "-f", "webhook-router", check=False)
    outputs = []
    try:
        for s in (s for s in snippets() if s.run):
            body = map_to_test(s.body, subst)
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=300, stdin=subprocess.DEVNULL)
            assert r.returncode == 0, (f"{s.where()} failed ({r.returncode}):\n{body}\n--- stdout:\n{r.stdout[-3000:]}"
                                       f"\n--- stderr:\n{r.stderr[-3000:]}")
            outputs.append(r.stdout)
        text = "\n".join(outputs)
        # The documented subcommands, through `docker exec`: registry-digest got
        # the pushed digest, notify-test delivered its sample (the router's own 202).
        assert digest in text
        assert "delivered: HTTP 202" in text, text[-2000:]
        # The image size the README states is the one just measured.
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        stated = {float(x) for x in re.findall(r"(\d+\.\d) MB (?:image|measured)", readme)}
        sizes = [int(l) for l in text.splitlines() if l.strip().isdigit() and int(l) > 1_000_000]
        assert len(stated) == 1 and sizes, (stated, sizes)
        print(f"\nimage size {sizes[0]} bytes ({sizes[0] / 1e6:.2f} MB); README says {stated.pop()} MB")
        assert abs(sizes[0] / 1e6 - float(re.search(r"(\d+\.\d) MB image", readme).group(1))) <= 0.15
    finally:
        engine.docker("rm", "-f", "webhook-router", check=False)
