#!/usr/bin/env bash
# Installs the Debian packages hq needs to build and test, only those that are missing.
# Runs apt-get update first when something must be installed. Needs root (or sudo).
set -euo pipefail

packages=(
  cmake gcc make pkg-config clang libclang-rt-14-dev
  libcjson-dev libstb-dev libcmocka-dev zlib1g-dev
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata
  python3 python3-numpy tar
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install ${missing[*]}" >&2; exit 2; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (unattended upgrades, a parallel job) instead of failing.
lock="-o DPkg::Lock::Timeout=600"
$sudo apt-get $lock update -qq
$sudo apt-get $lock install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
