#!/usr/bin/env bash
# Crafted ONNX models, one per op form and fusion pattern of the importer's op list
# (tests/models/pattern_cases.py; fixtures made by tests/models/make_pattern_reference.sh with
# onnxruntime-node): each is parsed with hq parse, must give the layers the case expects (fused
# BN/activation/add leave no layer of their own), and hq emulate (native) must match
# onnxruntime's outputs element by element within |hq - ref| <= 1e-4 |ref| + 1e-5, with the fast
# kernels and with the scalar reference kernels. Two cases
# also go through hq optimize and run as fp_optimized with --tap (ONNX node and hq layer names);
# the QUANTIZED cases go through hq optimize, hq compile and hq run, whose outputs must equal
# quantized emulation (reference and default kernels) byte for byte.
set -euo pipefail
py=/usr/bin/python3
cases="$HQ_SOURCE_DIR/tests/models/pattern_cases.py"
fix="$HQ_SOURCE_DIR/tests/fixtures/onnx/patterns"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -c 'import numpy' 2>/dev/null || { echo "onnx_patterns: /usr/bin/python3 needs numpy" >&2; exit 1; }

"$py" "$cases" inputs "$fix" "$tmp"
status=0
while read -r case; do
    in="$tmp/$case.nhwc.npy"
    if ! "$HQ" parse "$fix/$case.onnx" -o "$tmp/$case.har" >/dev/null 2>"$tmp/err.txt"; then
        echo "$case: hq parse failed: $(cat "$tmp/err.txt")"
        status=1
        continue
    fi
    if ! "$HQ" emulate "$tmp/$case.har" -d "$in" -o "$tmp/$case.out.npz" >/dev/null 2>"$tmp/err.txt"; then
        echo "$case: hq emulate failed: $(cat "$tmp/err.txt")"
        status=1
        continue
    fi
    # the scalar reference kernels too (HQ_EMULATE_KERNELS=reference, hq(1))
    HQ_EMULATE_KERNELS=reference "$HQ" emulate "$tmp/$case.har" -d "$in" -o "$tmp/$case.refk.npz" \
        >/dev/null 2>&1 || { echo "$case: hq emulate (reference kernels) failed"; status=1; }
    taps=$("$py" "$cases" taps "$case")
    if [ -n "$taps" ]; then
        # shellcheck disable=SC2086  # word splitting of the --tap list is intended
        "$HQ" emulate "$tmp/$case.har" -d "$in" -o "$tmp/$case.taps.npz" $taps >/dev/null
        "$HQ" optimize "$tmp/$case.har" -d "$in" -o "$tmp/$case.q.har" >/dev/null 2>&1 ||
            { echo "$case: hq optimize failed"; status=1; continue; }
        # shellcheck disable=SC2086
        "$HQ" emulate "$tmp/$case.q.har" -d "$in" --target fp_optimized -o "$tmp/$case.fpo.npz" \
            $taps >/dev/null
    fi
    if [ -n "$("$py" "$cases" quantized "$case")" ]; then
        # quantized: emulation (reference and default kernels) and the compiled program agree
        "$HQ" optimize "$tmp/$case.har" -d "$in" -o "$tmp/$case.q8.har" >/dev/null 2>&1 &&
            "$HQ" compile "$tmp/$case.q8.har" -o "$tmp/$case.hqx" >/dev/null &&
            HQ_EMULATE_KERNELS=reference "$HQ" emulate "$tmp/$case.q8.har" --target quantized \
                -d "$in" -o "$tmp/$case.qref.npz" >/dev/null &&
            "$HQ" emulate "$tmp/$case.q8.har" --target quantized -d "$in" \
                -o "$tmp/$case.qfast.npz" >/dev/null &&
            "$HQ" run "$tmp/$case.hqx" -d "$in" -o "$tmp/$case.run.npz" -j 2 >/dev/null ||
            { echo "$case: hq optimize / compile / quantized emulate / run failed"; status=1; }
    fi
done < <("$py" "$cases" list)
"$py" "$cases" check-all "$tmp" "$fix" || status=1
exit $status
