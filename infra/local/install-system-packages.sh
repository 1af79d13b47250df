#!/usr/bin/env bash
# Install the Debian packages the demo and tests run for real, when they are missing:
# docker-registry (the OCI registry stand-in), skopeo (the peer we compare against), npm
# (installs the pinned provider bindings tests/infra checks terraform/ against) and
# whatever ARMIRROR_EXTRA_APT_PACKAGES names (`make test` adds chromium, which renders
# the HTML report in its test).
set -euo pipefail
declare -A wanted=([docker-registry]=docker-registry [skopeo]=skopeo [npm]=npm)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
for pkg in ${ARMIRROR_EXTRA_APT_PACKAGES:-}; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
