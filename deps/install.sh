#!/usr/bin/env bash
# Installs webhook-router's dependencies from Debian 12 packages.
#   deps/install.sh          build dependencies only
#   deps/install.sh --test   build and test dependencies
#   deps/install.sh --bench  build, test and benchmark dependencies (wrk, nginx, perf)
# Nothing is downloaded except Debian packages; nothing is vendored.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lists=("$here/debian-packages.txt")
[ "${1:-}" = "--test" ] && lists+=("$here/test-packages.txt")
[ "${1:-}" = "--bench" ] && lists+=("$here/test-packages.txt" "$here/bench-packages.txt")
want=$(grep -hv '^\s*#' "${lists[@]}" | awk 'NF')
missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all $(wc -w <<<"$want") packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps docker.io from pulling in extras we do not use.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
