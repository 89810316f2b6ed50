#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`) and runs each for a while,
# seeded from the real fixtures. Exit non-zero if any fuzzer finds a crash,
# a leak or undefined behaviour (the reproducer is left in build/fuzz/).
#   WR_FUZZ_SECONDS=60 test/fuzz/run.sh          # CI's short run
#   WR_FUZZ_SECONDS=3600 test/fuzz/run.sh fuzz_payload   # a long run of one
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${WR_FUZZ_SECONDS:-60}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$(nproc)"
out=build/fuzz
fixtures=test/fixtures
seed() {   # seed <fuzzer> <files...>
  local dir=$out/corpus/$1; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/" || true; done
}
seed fuzz_payload "$fixtures"/distribution/*.json "$fixtures"/payloads/*.json
seed fuzz_docker_events "$fixtures"/docker/events-container-and-service.jsonl "$fixtures"/docker/containers-json.json
seed fuzz_url
printf 'https://portainer:9443/api/stacks/webhooks/638e6967?tag={tag}' > $out/corpus/fuzz_url/a
printf 'http://[::1]:8080/a/b/?x=1#f' > $out/corpus/fuzz_url/b
seed fuzz_labels
printf '{"webhook-router.image":"team/a,reg.io:5000/b","webhook-router.url":"http://h/x","webhook-router.tag":"v*"}\nteam/a\nreg.io:5000\nv1.2\n' > $out/corpus/fuzz_labels/a
seed fuzz_registry
printf 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull"' > $out/corpus/fuzz_registry/a
printf '{"auths":{"reg.local:5000":{"auth":"YWxpY2U6czNjcjN0"},"https://index.docker.io/v1/":{"username":"u","password":"p"}},"credHelpers":{"gcr.io":"gcloud"}}' > $out/corpus/fuzz_registry/b
printf 'reg.local:5000/team/app:v1@sha256:0123' > $out/corpus/fuzz_registry/c
printf '1h30m' > $out/corpus/fuzz_registry/d
seed fuzz_http_request
printf 'POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n' > $out/corpus/fuzz_http_request/a
printf 'GET /health?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' > $out/corpus/fuzz_http_request/b
seed fuzz_notify
printf 'telegram://1:T@telegram?chats=1,2\n{image} {\"a\":\"{objects}\"} {nope' > $out/corpus/fuzz_notify/a
printf 'matrix://:tok@m.example:8448/?rooms=%%21r:x\n{tag}{digest}{time}' > $out/corpus/fuzz_notify/b
printf 'gotify+http://u:p@127.0.0.1:8080/sub\n{}{{}}{repository' > $out/corpus/fuzz_notify/c

targets=${*:-fuzz_payload fuzz_docker_events fuzz_labels fuzz_url fuzz_http_request fuzz_registry fuzz_notify}
failed=()
for t in $targets; do
  echo "=== $t for ${seconds}s"
  if ! (cd $out && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
        ./test/fuzz/$t -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$t-" corpus/$t 2>&1 | tail -n 12); then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzers that failed: ${failed[*]} (reproducers in $out)"
  exit 1
fi
echo "all fuzzers clean: $targets"
