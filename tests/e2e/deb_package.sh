#!/usr/bin/env bash
# The Debian package (core/packaging.cmake): `cpack -G DEB` from this build tree into a scratch
# folder, its metadata (dpkg-deb -f: name, version, Depends), then `dpkg-deb -x` into a scratch
# root and the package's own files run from there with an empty environment: hq --version, the
# demo (hq parse -> hq optimize -> hq-diag --no-interactive on the packaged sample, with the
# inspector modules of the package), and `import hq` in Python finding the package's libhq and
# (hq.diag) its inspector modules.
# The package is never installed into the system with `dpkg -i`: the test runs as root on shared
# CI machines, where installing would replace whatever hq is there for everyone else.
# Skipped (exit 0 with a message) when cpack or dpkg-deb is missing.
# shellcheck disable=SC2016 # the checks' bash -c scripts read their arguments as $1, $2
set -euo pipefail
for tool in cpack dpkg-deb; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "deb_package: SKIPPED: $tool is not installed (cmake, dpkg)"
    exit 0
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}

# the build tree as it is (rebuilding it in Release would take minutes); cpack stages and writes
# the package under -B, nothing in the build tree changes
if ! cpack --config "$HQ_BUILD_DIR/CPackConfig.cmake" -G DEB -B "$work/pkg" >"$work/cpack.txt" 2>&1; then
  cat "$work/cpack.txt"
  echo "FAIL cpack -G DEB"
  exit 1
fi
shopt -s nullglob
debs=("$work"/pkg/hq_*.deb)
shopt -u nullglob
[ ${#debs[@]} -eq 1 ] || { cat "$work/cpack.txt"; echo "FAIL one hq_*.deb written: ${debs[*]:-none}"; exit 1; }
deb=${debs[0]}
echo "package: $(basename "$deb")"
dpkg-deb -I "$deb" | sed 's/^/  /'

field() { dpkg-deb -f "$deb" "$1"; }
version=$("$HQ" --version | awk '{print $2}')
check "it is named hq_<version of hq --version>_<dpkg architecture>.deb" \
  [ "$(basename "$deb")" = "hq_${version}_$(dpkg --print-architecture).deb" ]
check "Package: hq, Version: $version, a Maintainer and a Description" \
  bash -c '[ "$(dpkg-deb -f "$1" Package)" = hq ] && [ "$(dpkg-deb -f "$1" Version)" = "$2" ] &&
           [ -n "$(dpkg-deb -f "$1" Maintainer)" ] && [ -n "$(dpkg-deb -f "$1" Description)" ]' _ "$deb" "$version"
depends=$(field Depends)
check "Depends lists python3 and python3-numpy (the Python package)" \
  bash -c 'grep -qE "(^|, )python3(,|$| )" <<<"$1" && grep -qE "(^|, )python3-numpy(,|$| )" <<<"$1"' _ "$depends"
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
  check "Depends computed by dpkg-shlibdeps: libc6, cJSON, zlib, protobuf-c, and not the package's own libraries" \
    bash -c 'for p in libc6 libcjson zlib1g libprotobuf-c; do grep -q "$p" <<<"$1" || exit 1; done
             ! grep -qE "(^|, )(hq|libhq)" <<<"$1"' _ "$depends"
else
  echo "skip Depends from dpkg-shlibdeps: dpkg-shlibdeps is not installed (dpkg-dev)"
fi
check "every file lies under /usr" \
  bash -c '! dpkg-deb -c "$1" | awk "{print \$6}" | grep -vE "^\./(usr/.*)?$"' _ "$deb"

root="$work/root"
dpkg-deb -x "$deb" "$root"
usr="$root/usr"
check "it holds the programs, libraries, headers, hq.pc, man pages, completion, Python package and samples" \
  bash -c 'cd "$1" && for f in bin/hq bin/hq-diag include/hq/hq.h share/man/man1/hq.1 share/man/man1/hq-diag.1 \
             share/man/man3/hq-inspector.3 share/man/man5/hq-har.5 share/man/man5/hq-alls.5 \
             share/bash-completion/completions/hq share/bash-completion/completions/hq-diag \
             lib/python3/dist-packages/hq/__init__.py lib/python3/dist-packages/hq/_install.py \
             share/hq/samples/sample.onnx share/hq/samples/sample.alls share/hq/samples/sample_calib.npy; do
             [ -e "$f" ] || { echo "missing: /usr/$f"; exit 1; }; done
           ls lib*/libhq.so.* lib*/libhqrt.so.* lib*/libhq.so lib*/pkgconfig/hq.pc lib*/hq/inspectors/*.so \
             >/dev/null 2>&1 || ls lib*/*/libhq.so.* lib*/*/pkgconfig/hq.pc >/dev/null' _ "$usr"

# from here on, only the package's files, with no environment at all (no PATH, no
# LD_LIBRARY_PATH): they find each other relative to themselves
check "hq --version from the package prints the build's version" \
  bash -c '[ "$(env -i "$1/bin/hq" --version)" = "$("$2" --version)" ]' _ "$usr" "$HQ"
check "hq-diag lists the package's inspector modules" \
  bash -c 'env -i "$1/bin/hq-diag" --list-inspectors | grep -qF "$1/"' _ "$usr"

samples="$usr/share/hq/samples"
mkdir "$work/demo"
cd "$work/demo"
check "the demo from the package: hq parse on the packaged sample" \
  env -i "$usr/bin/hq" parse "$samples/sample.onnx" -o sample.har
check "  ... hq optimize with the packaged script and calibration set" \
  env -i "$usr/bin/hq" optimize sample.har -m "$samples/sample.alls" -d "$samples/sample_calib.npy" \
    -o sample_quantized.har
set +e
env -i "$usr/bin/hq-diag" --no-interactive -d "$samples/sample_calib.npy" --json findings.json \
  sample_quantized.har >diag.txt 2>&1 <&-
rc=$?
set -e
check "  ... hq-diag --no-interactive finds the sample's seeded normalization mistake (exit 1)" \
  bash -c '[ "$1" -eq 1 ] && grep -q "^\[error\] .*normalization1" diag.txt && [ -s findings.json ]' _ $rc
[ $rc -eq 1 ] || cat diag.txt
check "  ... and the archives equal the build tree's, byte for byte" \
  bash -c 'mkdir ref && cd ref && "$1" parse "$2/sample.onnx" -o sample.har >/dev/null &&
           "$1" optimize sample.har -m "$2/sample.alls" -d "$2/sample_calib.npy" -o sample_quantized.har >/dev/null &&
           cmp sample.har ../sample.har && cmp sample_quantized.har ../sample_quantized.har' _ "$HQ" "$samples"

# Python: the package's libhq, found relative to the installed package (_install.py). A
# sanitizer build's libhq cannot be loaded into python3.
if grep -q 'HQ_SANITIZE:BOOL=ON' "$HQ_BUILD_DIR/CMakeCache.txt"; then
  echo "skip import hq: a sanitizer build's libhq cannot be loaded by python3"
else
  check "import hq with only PYTHONPATH set loads the package's libhq and parses the sample" \
    bash -c 'out=$(env -i PYTHONPATH="$1/lib/python3/dist-packages" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c "
import hq, hq._lib, sys
hq.parse(sys.argv[1])
print(hq.__version__, hq._lib.hq_path)" "$1/share/hq/samples/sample.onnx") &&
             [[ "$out" == "$2 $1/"*/libhq.so ]] || { echo "python3 printed: ${out:-nothing}"; exit 1; }' _ "$usr" "$version"
  check "  ... and hq.diag loads the package's inspectors and finds what hq-diag found" \
    bash -c 'env -i PYTHONPATH="$1/lib/python3/dist-packages" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c "
import hq, json, sys
report = hq.diag(\"sample_quantized.har\", sys.argv[1], output_dir=\"hq-diag_files\")
want = json.load(open(\"findings.json\"))[\"diagnostics\"]
assert [f.message for f in report.findings] == [d[\"message\"] for d in want], report
assert all(i[\"path\"].startswith(sys.argv[2]) for i in report.data[\"inspectors\"])
" "$1/share/hq/samples/sample_calib.npy" "$1/"' _ "$usr"
fi

exit $fail
