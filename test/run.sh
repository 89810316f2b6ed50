#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: installs the Debian
# packages, then builds and runs every test twice — a debug build and an
# AddressSanitizer + UBSan build (the integration tests then run the
# sanitized router and fail on any sanitizer report or a non-zero exit).
# Integration tests start their own Docker engine, registry and receivers on
# 127.0.0.1; nothing else on the machine is touched.
#
#   test/run.sh                        # everything (debug, asan, and the release build)
#   WR_PRESETS="debug" test/run.sh     # limit the presets for a quick local run
#   WR_CTEST_ARGS="-L unit" test/run.sh   # extra ctest arguments (e.g. -L unit, -R core)
#   WR_VALGRIND=0 test/run.sh          # skip the valgrind pass (WR_VALGRIND=1 forces it)
#   WR_STATIC_ANALYSIS=1 test/run.sh   # the clang-tidy step also on a limited run
set -euo pipefail
cd "$(dirname "$0")/.."

deps/install.sh --test

presets=${WR_PRESETS:-"debug asan"}
# shellcheck disable=SC2206  # word splitting intended
ctest_args=(${WR_CTEST_ARGS:-})
jobs=$(nproc 2>/dev/null || echo 2)
summary=()
failed=0

# step <label> <command…>: runs one step, records ok/FAILED, never exits the script.
step() {
  local label=$1; shift
  if "$@"; then
    return 0
  fi
  echo "*** $label FAILED"
  return 1
}

for p in $presets; do
  t0=$SECONDS
  result=""
  echo
  echo "=== preset $p: configure"
  if ! step "$p configure" cmake --preset "$p"; then
    result="configure FAILED"
  else
    echo "=== preset $p: build"
    if ! step "$p build" cmake --build --preset "$p" -j"$jobs"; then
      result="build FAILED"
    else
      echo "=== preset $p: ctest"
      if step "$p ctest" ctest --preset "$p" "${ctest_args[@]}"; then
        result="all tests passed"
      else
        list="build/$p/Testing/Temporary/LastTestsFailed.log"
        names=""
        [ -f "$list" ] && names=$(cut -d: -f2- "$list" | paste -sd' ' -)
        result="tests FAILED: ${names:-see the ctest output above}"
      fi
    fi
  fi
  [ "$result" = "all tests passed" ] || failed=1
  summary+=("$(printf '%-8s %-s  (%ds)' "$p" "$result" $((SECONDS - t0)))")
done

# The README's run command builds the release preset: on a full run it must build too.
if [ -z "${WR_PRESETS:-}" ]; then
  t0=$SECONDS
  echo
  echo "=== preset release: configure and build"
  if step "release configure" cmake --preset release &&
     step "release build" cmake --build --preset release -j"$jobs"; then
    result="built"
  else
    result="build FAILED"
    failed=1
  fi
  summary+=("$(printf '%-8s %-s  (%ds)' release "$result" $((SECONDS - t0)))")
fi

# Static analysis (clang-tidy: the analyzer and a few bug-finding checks):
# on a full run, or when WR_STATIC_ANALYSIS=1.
if [ -z "${WR_PRESETS:-}" ] || [ "${WR_STATIC_ANALYSIS:-0}" = 1 ]; then
  t0=$SECONDS
  echo
  echo "=== static analysis: clang-tidy over src/"
  if cmake --preset debug >/dev/null && step "static analysis" bash test/static_analysis.sh build/debug; then
    result="no findings"
  else
    result="findings FAILED"
    failed=1
  fi
  summary+=("$(printf '%-8s %-s  (%ds)' tidy "$result" $((SECONDS - t0)))")
fi

# The parsers under libFuzzer (clang, ASan+UBSan): a short run of each on a
# full run, or when WR_FUZZ_SECONDS is given.
if [ -z "${WR_PRESETS:-}" ] || [ -n "${WR_FUZZ_SECONDS:-}" ]; then
  t0=$SECONDS
  echo
  echo "=== fuzzers: ${WR_FUZZ_SECONDS:-60}s each"
  if WR_FUZZ_SECONDS=${WR_FUZZ_SECONDS:-60} step "fuzz" bash test/fuzz/run.sh; then
    result="all fuzzers clean"
  else
    result="fuzzing FAILED"
    failed=1
  fi
  summary+=("$(printf '%-8s %-s  (%ds)' fuzz "$result" $((SECONDS - t0)))")
fi

# The integration suite again with the debug router under valgrind's
# memcheck: any memory error, or any block not freed at exit, fails the
# test (test/integration/harness.py, WR_VALGRIND). It catches what ASan
# cannot see: the uninstrumented Debian libraries (libuv, OpenSSL, c-ares).
if { [ -z "${WR_PRESETS:-}" ] || [ -n "${WR_VALGRIND:-}" ]; } && [ "${WR_VALGRIND:-1}" != 0 ]; then
  t0=$SECONDS
  echo
  echo "=== valgrind: the integration suite with the router under memcheck"
  if cmake --preset debug >/dev/null && cmake --build --preset debug -j"$jobs" >/dev/null &&
     step "valgrind" env WR_VALGRIND=1 WR_BINARY="$PWD/build/debug/webhook-router" \
       /usr/bin/python3 -m pytest -q -p no:cacheprovider test/integration; then
    result="memcheck clean"
  else
    result="memcheck FAILED"
    failed=1
  fi
  summary+=("$(printf '%-8s %-s  (%ds)' valgrind "$result" $((SECONDS - t0)))")
fi

echo
echo "=== summary"
for line in "${summary[@]}"; do
  echo "  $line"
done
if [ "$failed" -ne 0 ]; then
  echo "=== FAILED"
  exit 1
fi
echo "=== all passed"
