"""The registry client (issue 13) against a real docker-registry, three ways:
open, htpasswd Basic, and token auth with a token server issuing signed JWTs.
`webhook-router registry-digest <ref>` must print the digest `docker push`
printed, and refuse wrong credentials with a line naming the host and
holding neither the password nor a token."""

import os
import subprocess

import pytest

from harness import Registry, TokenServer, free_port, make_cert, push_image, write_auth_file


def registry_digest(binary, ref, env=None, timeout=60):
    full = {k: v for k, v in os.environ.items()
            if k not in ("REGISTRY_AUTH_FILE", "INSECURE_REGISTRIES", "TLS_CA_FILE", "TLS_INSECURE")}
    full.update(env or {})
    return subprocess.run([binary, "registry-digest", ref], env=full, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def repo_digests(engine, ref):
    out = engine.docker("image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", ref).stdout
    return [line.split("@", 1)[1] for line in out.split() if "@" in line]


def test_open_registry(engine, binary, uniq):
    reg = Registry(free_port())
    try:
        digest = push_image(engine, reg.host, "team/app", uniq)
        assert digest in repo_digests(engine, f"{reg.host}/team/app:{uniq}")
        r = registry_digest(binary, f"{reg.host}/team/app:{uniq}", {"INSECURE_REGISTRIES": reg.host})
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"

        # A tag that is not there: exit 1, the line says which.
        r = registry_digest(binary, f"{reg.host}/team/app:nope", {"INSECURE_REGISTRIES": reg.host})
        assert r.returncode == 1
        assert f"{reg.host} has no team/app:nope (HTTP 404)" in r.stderr
        assert r.stdout == ""

        # Not listed in INSECURE_REGISTRIES, but on 127.0.0.1: https first, then
        # plain http, as Docker does for loopback (issue 21; it failed with
        # "TLS handshake failed: wrong version number").
        r = registry_digest(binary, f"{reg.host}/team/app:{uniq}")
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"
    finally:
        reg.close()


def test_htpasswd_basic(engine, binary, uniq, workdir):
    password = "pw-" + uniq + "-basic"
    reg = Registry(free_port(), auth="htpasswd", users={"alice": password})
    try:
        digest = push_image(engine, reg.host, "team/app", "v1", user="alice", password=password)
        env = {"INSECURE_REGISTRIES": reg.host,
               "REGISTRY_AUTH_FILE": write_auth_file(workdir, {reg.host: ("alice", password)})}
        r = registry_digest(binary, f"{reg.host}/team/app:v1", env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"

        # The username/password form, the key written as a URL.
        env["REGISTRY_AUTH_FILE"] = write_auth_file(workdir, {f"http://{reg.host}": ("alice", password)},
                                                    form="username")
        r = registry_digest(binary, f"{reg.host}/team/app:v1", env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"

        wrong = "wrong-" + uniq
        env["REGISTRY_AUTH_FILE"] = write_auth_file(workdir, {reg.host: ("alice", wrong)})
        r = registry_digest(binary, f"{reg.host}/team/app:v1", env)
        assert r.returncode == 1
        assert r.stdout == ""
        assert f"{reg.host} refused the credentials for team/app (HTTP 401)" in r.stderr
        assert wrong not in r.stderr and password not in r.stderr

        # No credentials at all.
        del env["REGISTRY_AUTH_FILE"]
        r = registry_digest(binary, f"{reg.host}/team/app:v1", env)
        assert r.returncode == 1
        assert f"{reg.host} refused anonymous access to team/app" in r.stderr
    finally:
        reg.close()


def test_token_auth(engine, binary, uniq, workdir):
    password = "pw-" + uniq + "-token"
    tokens = TokenServer(users={"bob": password})
    reg = Registry(free_port(), auth="token", token_server=tokens)
    try:
        digest = push_image(engine, reg.host, "team/app", "v2", user="bob", password=password)
        assert digest in repo_digests(engine, f"{reg.host}/team/app:v2")
        env = {"INSECURE_REGISTRIES": reg.host,
               "REGISTRY_AUTH_FILE": write_auth_file(workdir, {reg.host: ("bob", password)})}
        before = len(tokens.requests)
        r = registry_digest(binary, f"{reg.host}/team/app:v2", env)
        assert r.returncode == 0, r.stderr + reg.tail_log()
        assert r.stdout == digest + "\n"
        # The router asked the token server, with its credentials, for pull only.
        asked = tokens.requests[before:]
        assert [q["user"] for q in asked] == ["bob"]
        assert "scope=repository%3Ateam%2Fapp%3Apull" in asked[0]["path"]
        assert "service=wr-test-registry" in asked[0]["path"]

        # Wrong password: the token server refuses it; nothing secret printed.
        wrong = "wrong-" + uniq
        env["REGISTRY_AUTH_FILE"] = write_auth_file(workdir, {reg.host: ("bob", wrong)})
        r = registry_digest(binary, f"{reg.host}/team/app:v2", env)
        assert r.returncode == 1
        assert r.stdout == ""
        assert f"{reg.host} refused the credentials for team/app" in r.stderr
        assert wrong not in r.stderr and password not in r.stderr
        assert not any(t in r.stderr for t in tokens.tokens)

        # Anonymous: a token without access, which the registry refuses.
        del env["REGISTRY_AUTH_FILE"]
        r = registry_digest(binary, f"{reg.host}/team/app:v2", env)
        assert r.returncode == 1
        assert f"{reg.host} refused anonymous access to team/app (HTTP 401" in r.stderr
        assert not any(t in r.stderr for t in tokens.tokens)
    finally:
        reg.close()
        tokens.close()


def test_token_auth_anonymous_pull(engine, binary, uniq):
    """A registry that lets anyone pull (as Docker Hub does for public images):
    the anonymous token flow."""
    password = "pw-" + uniq + "-anon"
    tokens = TokenServer(users={"carol": password}, anonymous_actions=("pull",))
    reg = Registry(free_port(), auth="token", token_server=tokens)
    try:
        digest = push_image(engine, reg.host, "library/redis", "7", user="carol", password=password)
        before = len(tokens.requests)
        r = registry_digest(binary, f"{reg.host}/library/redis:7", {"INSECURE_REGISTRIES": reg.host})
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"
        assert [q["user"] for q in tokens.requests[before:]] == [None]
    finally:
        reg.close()
        tokens.close()


def test_https_registry(engine, binary, uniq, workdir):
    """Not in INSECURE_REGISTRIES: https, verified against TLS_CA_FILE."""
    cert, key = make_cert(workdir, "registry", "IP:127.0.0.1")
    reg = Registry(free_port(), tls_cert=cert, tls_key=key)
    try:
        digest = push_image(engine, reg.host, "team/secure", uniq)
        r = registry_digest(binary, f"{reg.host}/team/secure:{uniq}", {"TLS_CA_FILE": cert})
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"
        # The system bundle does not know this certificate.
        r = registry_digest(binary, f"{reg.host}/team/secure:{uniq}")
        assert r.returncode == 1
        assert reg.host in r.stderr and "certificate" in r.stderr
        r = registry_digest(binary, f"{reg.host}/team/secure:{uniq}", {"TLS_INSECURE": "1"})
        assert r.returncode == 0, r.stderr
        assert r.stdout == digest + "\n"
    finally:
        reg.close()
