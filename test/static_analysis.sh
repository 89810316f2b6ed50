#!/usr/bin/env bash
# Static analysis of src/: clang-tidy with the checks in .clang-tidy (clang's
# analyzer and a few bug-finding checks) over the debug build's
# compile_commands.json. Any finding fails (WarningsAsErrors). A finding that
# is wrong is silenced where it stands, with a NOLINT(check) and a comment
# saying why, never by turning a check off for everything.
#   test/static_analysis.sh [build-dir]     (default build/debug, configured first)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/debug}
[ -f "$build/compile_commands.json" ] || cmake --preset debug >/dev/null
files=$(git ls-files 'src/*.c' 'src/**/*.c' 2>/dev/null || find src -name '*.c')
# run-clang-tidy exits non-zero when any file has a finding.
run-clang-tidy -quiet -p "$build" -j "$(nproc)" $files
