#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: installs the Debian
# packages, then builds and runs every test twice — a debug build and an
# AddressSanitizer + UBSan build. Integration tests start their own Docker
# engine and registry; nothing else on the machine is touched.
#   WR_PRESETS="debug" test/run.sh    # limit the presets for a quick local run
set -euo pipefail
cd "$(dirname "$0")/.."

deps/install.sh --test

presets=${WR_PRESETS:-"debug asan"}
failed=()
for p in $presets; do
  echo "=== preset $p: configure and build"
  cmake --preset "$p" >/dev/null
  cmake --build --preset "$p" -j"$(nproc)"
  echo "=== preset $p: ctest"
  if ! ctest --preset "$p"; then
    failed+=("$p")
  fi
done

# The README's run command builds the release preset: it must build too.
if [ -z "${WR_PRESETS:-}" ]; then
  echo "=== preset release: configure and build"
  cmake --preset release >/dev/null
  cmake --build --preset release -j"$(nproc)" || failed+=("release-build")
fi

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED presets: ${failed[*]}"
  exit 1
fi
echo "all presets passed: $presets"
