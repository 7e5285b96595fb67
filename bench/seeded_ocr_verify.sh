#!/usr/bin/env bash
# seeded_ocr_verify.sh — hq-diag --verify on the seeded-problem cases of bench/seeded_ocr.sh, each
# figure checked against a separate hq optimize + hq emulate + SQNR computation.
#
# PP-OCRv4 det at SIZE x SIZE (default 320), the 64 calibration and 8 held-out images of
# bench/seeded_ocr.py, the four archives of seeded_ocr.sh (a correct; b normalization for 0-1
# data on 0-255 data; c BGR-swapped calibration images; d implicit 4-bit compression). On each:
#   hq-diag --accept all --verify --verify-from det.har --verify-data HELD (the case's 8 held-out
#   images) --json, --output-model-script all.alls; and hq-diag --accept all --order INSPECTOR
#   --output-model-script cause.alls for the first cause of that run's triage (the script of the
#   cause alone, merged as hq-diag merges it).
# Then, separately: hq optimize det.har with the case's script, with all.alls and with
# cause.alls (same calibration data), hq emulate of each on HELD (fp_optimized and quantized) and
# the output SQNR (quantized against fp_optimized) in numpy. Checks, per case:
#   - verify's before_db equals the separate figure of the case's archive, and baseline_db (the
#     archive's script re-quantized in memory) reproduces it;
#   - the "all accepted" run's after_db equals the separate figure of all.alls;
#   - the first cause's run (when --verify measured one) equals the separate figure of cause.alls;
# each within 0.01 dB. Also prints the headline (verdict, SQNR and decision agreement) of each run.
#
# A case where --accept all accepts no line (nothing to re-quantize: verify's figures are null)
# is checked for that instead.
#
# usage: bench/seeded_ocr_verify.sh [WORK_DIR]   (default: a new folder under /tmp, kept)
# env:   HQ_BUILD_DIR (default <repo>/build; built with cmake when hq is missing there),
#        SIZE (default 320), HQ_THREADS (default 2), HQ_MODEL_CACHE (tests/models/fetch_models.sh),
#        TABLE_ONLY (1: only the table and the checks, from the files a previous run left in
#        WORK_DIR)
# Writes WORK_DIR/results.txt (the table and the checks) and prints it; exit 0 when every check
# holds, 1 otherwise.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${HQ_BUILD_DIR:-$repo/build}")
size=${SIZE:-320}
threads=${HQ_THREADS:-2}
table_only=${TABLE_ONLY:-0}
work=${1:-$(mktemp -d /tmp/seeded_ocr_verify.XXXXXX)}
py=/usr/bin/python3
net=ppocrv4_det
mkdir -p "$work"
work=$(cd "$work" && pwd)
. "$repo/bench/seeded_ocr_cases.sh"

if [ "$table_only" != 1 ] && { ! [ -x "$build/hq" ] || ! [ -x "$build/hq-diag" ]; }; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 >/dev/null
fi
hq=$build/hq
diag=$build/hq-diag

measure() {
det=$(awk '$1 == "det" { print $2 }' <<<"$("$repo/tests/models/fetch_models.sh")")

"$py" "$repo/bench/seeded_ocr.py" images "$work/data" "$size" >"$work/images.log"
"$hq" parse "$det" -o "$work/det.har" --net-name "$net" --tensor-shapes "1,3,$size,$size" >/dev/null

seeded_scripts

# the separate measurement: HAR on HELD, quantized against fp_optimized, written to NAME.npz pair
emulate() { # name har held
    "$hq" emulate "$2" -d "$3" --target fp_optimized -j "$threads" -q -o "$1.fpo.npz"
    "$hq" emulate "$2" -d "$3" --target quantized -j "$threads" -q -o "$1.q.npz"
}

for c in a b c d; do
    dir=$work/$c
    mkdir -p "$dir"
    calib=$(calib_of "$c")
    held=$(held_of "$c")
    "$hq" optimize "$work/det.har" -d "$calib" -m "$work/$c.alls" -o "$dir/$c.har" -j "$threads" \
        >"$dir/optimize.log" 2>&1
    rc=0
    (cd "$dir" && NO_COLOR=1 "$diag" --accept all -d "$calib" --verify --verify-from "$work/det.har" \
        --verify-data "$held" -j "$threads" --json verify.json --output-model-script all.alls \
        --log-path verify.log "$c.har" >verify.txt 2>&1 </dev/null) || rc=$?
    echo "$rc" >"$dir/verify.rc"
    # the first cause of the triage whose group --verify re-quantized, alone
    first=$("$py" - "$dir/verify.json" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))["verify"] or {}
runs = [r for r in v.get("runs") or [] if r["group"] == "cause" and r["inspector"]]
print(min(runs, key=lambda r: r["rank"])["inspector"] if runs else "")
EOF
)
    echo "$first" >"$dir/cause.name"
    if [ -n "$first" ]; then
        (cd "$dir" && NO_COLOR=1 "$diag" --accept all -d "$calib" --order "$first" \
            --output-model-script cause.alls --log-path cause.log "$c.har" >cause.txt 2>&1 \
            </dev/null) || true
    fi
    emulate "$dir/before" "$dir/$c.har" "$held"
    for s in all cause; do
        [ -f "$dir/$s.alls" ] || continue
        "$hq" optimize "$work/det.har" -d "$calib" -m "$dir/$s.alls" -o "$dir/$s.har" \
            -j "$threads" >"$dir/optimize_$s.log" 2>&1
        emulate "$dir/$s" "$dir/$s.har" "$held"
    done
done
}
[ "$table_only" = 1 ] || measure

ok=0
"$py" - "$work" >"$work/results.txt" <<'EOF' || ok=1
import json, os, sys
import numpy as np

work = sys.argv[1]

def sqnr(prefix):
    f, q = np.load(prefix + ".fpo.npz"), np.load(prefix + ".q.npz")
    out = []
    for key in f.files:
        a, b = f[key].astype(np.float64), q[key].astype(np.float64)
        out.append(10 * np.log10((a * a).sum() / ((b - a) ** 2).sum()))
    return out

def agreement(prefix):
    """hq-diag's decision agreement of a sigmoid map (docs/diag.md, "Decision outputs"): the mean
    over the float map's two sides of 0.5 of the share of pixels the quantized map keeps there"""
    f, q = np.load(prefix + ".fpo.npz"), np.load(prefix + ".q.npz")
    a, b = f[f.files[0]] >= 0.5, q[q.files[0]] >= 0.5
    sides = [(b[a == s] == s).mean() for s in (False, True) if (a == s).any()]
    return 100.0 * sum(sides) / len(sides)

def fmt(xs):
    return "null" if xs is None else " ".join("%.4f" % x for x in xs)

rows, checks, failed = [], [], False
def check(case, what, a, b):
    global failed
    good = a is not None and b is not None and len(a) == len(b) and \
        all(abs(x - y) < 0.01 for x, y in zip(a, b))
    failed |= not good
    checks.append("%s %s: %s: --verify %s, separate %s" % ("ok  " if good else "FAIL", case, what,
                                                          fmt(a), fmt(b)))

for case in "abcd":
    d = os.path.join(work, case)
    j = json.load(open(os.path.join(d, "verify.json")))
    v = j["verify"]
    o = j["output_sqnr_db"][0]
    rc = open(os.path.join(d, "verify.rc")).read().strip()
    cause = open(os.path.join(d, "cause.name")).read().strip()
    runs = {("all" if r["group"] == "all" else r["inspector"]): r for r in v["runs"]}
    if "all" not in runs:  # no line accepted: nothing re-quantized, nothing measured
        rows.append("| %s | %s | %s | %.2f | %.2f | no line accepted | %.2f | | | | | |" % (
            case, rc, j["verdict"]["level"], o["quantized_vs_fp_optimized_db"],
            o["quantized_vs_fp_optimized_agreement_pct"], agreement(os.path.join(d, "before"))))
        good = v["before_db"] is None and v["baseline_db"] is None and not v["runs"]
        failed |= not good
        checks.append("%s %s: no line accepted: --verify re-quantized nothing and its figures are "
                      "null; the archive on the held-out images, separately: %s dB" %
                      ("ok  " if good else "FAIL", case, fmt(sqnr(os.path.join(d, "before")))))
        continue
    rows.append("| %s | %s | %s | %.2f | %s | %s | %.2f | %s | %s | %.2f | %s | %s |" % (
        case, rc, j["verdict"]["level"], o["quantized_vs_fp_optimized_db"],
        "%.2f" % o["quantized_vs_fp_optimized_agreement_pct"]
        if o.get("quantized_vs_fp_optimized_agreement_pct") is not None else "-",
        fmt(v["before_db"]), agreement(os.path.join(d, "before")), fmt(v["baseline_db"]),
        fmt(runs["all"]["after_db"]), agreement(os.path.join(d, "all")),
        cause or "-", fmt(runs[cause]["after_db"]) if cause else "-"))
    check(case, "before (the archive on the held-out images)", v["before_db"],
          sqnr(os.path.join(d, "before")))
    check(case, "baseline (its script re-quantized) reproduces it", v["baseline_db"],
          v["before_db"])
    check(case, "all accepted (%d lines)" % len(runs["all"]["lines"]), runs["all"]["after_db"],
          sqnr(os.path.join(d, "all")))
    if cause:
        check(case, "first cause alone (%s, %d lines)" % (cause, len(runs[cause]["lines"])),
              runs[cause]["after_db"], sqnr(os.path.join(d, "cause")))

print("| case | hq-diag exit | verdict | headline SQNR dB (64 calibration images) | decision agreement % | verify before_db (8 held-out) | held-out agreement % | baseline_db | all accepted after_db | held-out agreement % | first cause | its after_db |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
print()
print("first cause: the first cause of the triage that --verify re-quantized alone (\"-\": every")
print("accepted line belongs to one cause, which the \"all accepted\" run measures)")
print()
print("\n".join(checks))
sys.exit(1 if failed else 0)
EOF
cat "$work/results.txt"
echo "seeded_ocr_verify.sh: work folder $work"
exit $ok
