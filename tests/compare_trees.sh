#!/usr/bin/env bash
# compare_trees.sh — proves that a refactoring left hq's behaviour unchanged: builds two revisions
# and runs the same pipeline on the archives the test suite builds with each, then compares every
# file they wrote byte for byte.
#
#   tests/compare_trees.sh [options] REV_A REV_B [OUTDIR]
#
# REV_A / REV_B: anything `git rev-parse` takes (main, HEAD~3, 0178c3d), or the path of a source
# folder (a checkout with uncommitted changes; it is built as it is, never modified).
# OUTDIR (default: a new folder under /tmp, kept) holds build-<sha>/, inputs/, a/, b/.
#
# Options:
#   --quick            a subset (one case of each kind, no ONNX pattern cases, no real models)
#   --build-a DIR      use DIR's hq, hq-diag and hq-inspectors/ for REV_A instead of building
#   --build-b DIR      the same for REV_B (the revision then only names the run)
#   --serial           run the two builds one after the other (default: side by side, two jobs)
#   --fetch-models     let tests/models/fetch_models.sh download the real models missing from the
#                      cache (otherwise only cached models are used and nothing is downloaded)
#   -h, --help         this text
#
# Builds: `git worktree add --detach` of the revision into a temporary folder, a Release build of
# hq, hq-diag and the inspector modules only (-DHQ_TESTS=OFF, -j2) into OUTDIR/build-<sha>, then
# the worktree is removed. A build folder that a previous run left complete in the same OUTDIR is
# reused as it is (the sha fixes its source), so re-running with the same OUTDIR builds nothing;
# two equal revisions are built once. A source folder is always rebuilt (incrementally).
#
# Cases: every archive the test suite builds — the bundled samples (sample.onnx with each script,
# tiny.har, the hq-diag fixtures of tests/e2e/diag_fixtures.py), tests/fixtures/onnx/conv.onnx and
# nms_head.onnx, small_cnn.onnx with the optimize and deploy scripts, the numerics-by-hand model,
# the inspector fixtures with the scripts and calibration sets their tests use, every ONNX pattern
# case, and the real models of the import tests when the model cache has them
# (${HQ_MODEL_CACHE:-<repo>/.cache/models}, also looked up in the main checkout of this
# repository). Inputs are written once to OUTDIR/inputs (from this checkout's fixtures) and read
# by both sides, so both see the very same paths.
#
# Steps per case, each in OUTDIR/<a|b>/<case>/ as the working folder (stdout, stderr and exit
# status of every step are kept and compared too):
#   hq parse, hq info (parsed), hq emulate --target native of the parsed archive, hq optimize
#   (with the case's script), hq info, hq emulate with the three targets (-o), the quantized one
#   again with HQ_EMULATE_KERNELS=reference, hq compile (--har too), hq run of the program and of
#   the compiled archive, hq analyze-noise -o, and hq-diag --no-interactive with --json,
#   --log-path, --output-model-script and --report.
# A step whose input is missing (its producer failed) is skipped on both sides alike.
#
# Normalised before comparing (both sides alike, in place):
#   the build folder (hq-diag logs and reports the paths of the inspector modules it loaded, in
#     hq-diag.log and findings.json; stdout, stderr) becomes BUILD.
#   the hq-diag log: the UTC time stamp that opens every line becomes TIME.
#   stdout of every step: durations ("1.23 s", "45 ms", "12.3 ms/sample", "in 0.8 s",
#     "... frames/s", "... samples/s") become N, since they measure the machine, not the code.
#   Nothing else: archives, .npz, .hqx, JSON and HTML are compared as written.
#
# Output: one line per case, `same  CASE` or `DIFF  CASE  file ...`, then `N same, M different`.
# Exit status: 0 all same, 1 any difference, 2 could not run (bad revision, build failure).
# Time on 2 busy cores: each build 3-4 minutes (equal revisions are built once, a kept OUTDIR
# builds nothing again); the runs of both sides about 4 minutes for the full set, under 1 minute
# with --quick.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "compare_trees.sh: $*" >&2; exit 2; }

quick=0
serial=0
fetch=0
build_a=""
build_b=""
positional=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --serial) serial=1 ;;
    --fetch-models) fetch=1 ;;
    --build-a) [ $# -ge 2 ] || die "--build-a needs a folder"; build_a=$2; shift ;;
    --build-b) [ $# -ge 2 ] || die "--build-b needs a folder"; build_b=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -ge 2 ] && [ ${#positional[@]} -le 3 ] || { usage >&2; exit 2; }
rev_a=${positional[0]}
rev_b=${positional[1]}
out=${positional[2]:-$(mktemp -d /tmp/hq-compare.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || die "$py needs numpy (python3-numpy)"

# ---- builds ------------------------------------------------------------------------------------

# build REV EXPLICIT_DIR: prints the build folder holding hq, hq-diag and hq-inspectors/
build() {
  local rev=$1 explicit=$2 dir src
  if [ -n "$explicit" ]; then
    dir=$(cd "$explicit" && pwd) || die "no build folder $explicit"
    [ -x "$dir/hq" ] && [ -x "$dir/hq-diag" ] || die "$dir has no hq and hq-diag"
    echo "$dir"
    return
  fi
  if [ -d "$rev" ]; then # a source folder, built as it is
    src=$(cd "$rev" && pwd)
    dir="$out/build-dir-$(printf '%s' "$src" | cksum | cut -d' ' -f1)"
    configure_and_build "$src" "$dir" || die "build of $src failed; log in $dir/build.log"
    echo "$dir"
    return
  fi
  local sha
  sha=$(git -C "$repo" rev-parse --verify --quiet "$rev^{commit}") || die "unknown revision '$rev'"
  dir="$out/build-${sha:0:12}"
  if [ ! -e "$dir/.complete" ]; then
    src=$(mktemp -d /tmp/hq-compare-src.XXXXXX)
    git -C "$repo" worktree add --detach --quiet "$src" "$sha" || die "git worktree add $rev failed"
    local ok=1
    configure_and_build "$src" "$dir" || ok=0
    git -C "$repo" worktree remove --force "$src"
    [ $ok -eq 1 ] || die "build of $rev failed; log in $dir/build.log"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

configure_and_build() {
  local src=$1 dir=$2
  mkdir -p "$dir"
  echo "building $src in $dir" >&2
  { cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DHQ_TESTS=OFF &&
    cmake --build "$dir" -j2 --target hq_cli hq_diag; } >"$dir/build.log" 2>&1
}

dir_a=$(build "$rev_a" "$build_a")
dir_b=$(build "$rev_b" "$build_b")

# ---- inputs (written once, read by both sides) -------------------------------------------------

in="$out/inputs"
rm -rf "$in"
mkdir -p "$in/ins" "$in/patterns"
ins_src="$repo/tests/fixtures/inspectors"
cp "$ins_src"/data/* "$in/ins/"
"$py" "$ins_src/make_fixtures.py" --derive "$in/ins" >/dev/null
"$py" "$repo/tests/e2e/diag_fixtures.py" "$in" # parsed.har, quantized.har
"$py" "$repo/tests/fixtures/optimize/numerics_by_hand.py" make "$in" >/dev/null # tiny.onnx, data.npy
"$py" "$repo/tests/models/pattern_cases.py" inputs "$repo/tests/fixtures/onnx/patterns" "$in/patterns"
"$py" - "$in" "$repo" <<'PY'
import sys
import numpy as np
out, src = sys.argv[1], sys.argv[2]
# the data of tests/e2e/deploy_bitexact.sh, optimize_cli.sh, deploy_cli.sh, deploy_bitexact_real.sh
r = np.random.RandomState(7)
np.save(out + "/conv.npy", (r.rand(16, 4, 4, 2) * 2 - 0.5).astype(np.float32))
np.save(out + "/small_calib.npy", r.uniform(0, 255, (20, 16, 16, 3)).astype(np.float32))
np.save(out + "/small_in.npy", r.uniform(-20, 280, (3, 16, 16, 3)).astype(np.float32))
np.save(out + "/sample_in.npy", np.load(src + "/samples/sample_calib.npy")[:6])
rgb = np.load(src + "/tests/fixtures/inspectors/data/calib_rgb.npy")
np.save(out + "/rgb_in.npy", rgb[-4:].astype(np.float32))
np.save(out + "/opt_calib.npy", np.random.RandomState(0).uniform(0, 255, (20, 16, 16, 3)).astype(np.float32))
np.save(out + "/conv_d.npy", np.random.RandomState(1).randn(4, 4, 4, 2).astype(np.float32))
r = np.random.RandomState(7)
np.save(out + "/det.npy", r.rand(2, 96, 96, 3).astype(np.float32) * 2 - 1)
np.save(out + "/cls.npy", r.rand(2, 48, 192, 3).astype(np.float32) * 2 - 1)
PY
# the scripts of tests/e2e/optimize_cli.sh and deploy_bitexact.sh
cat >"$in/optimize_cli.alls" <<'ALLS'
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
quantization_param(conv1, precision_mode=a16_w16)
model_optimization_config(calibration, batch_size=4, calibset_size=16)
pre_quantization_optimization(activation_clipping, layers=[conv4], mode=percentile, clipping_values=[0.0, 99.9])
model_optimization_flavor(compression_level=1)
nms_postprocess(meta.json, meta_arch=yolov5)
nms_postprocess(other.json)
ALLS
cat >"$in/mixed.alls" <<'ALLS'
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
quantization_param(conv1, precision_mode=a16_w16)
model_optimization_config(calibration, batch_size=4, calibset_size=16)
ALLS
cat >"$in/w4.alls" <<'ALLS'
norm1 = normalization([127.5, 127.5, 127.5], [64.0, 64.0, 64.0])
model_optimization_flavor(compression_level=3)
ALLS
norm=$(cat "$in/ins/norm_ok.alls")
printf '%s\nmodel_optimization_flavor(optimization_level=3)\n' "$norm" >"$in/ins/level3.alls"
printf '%s\nmodel_optimization_config(calibration, calibset_size=16)\n' "$norm" >"$in/ins/small.alls"
printf '%s\nmodel_optimization_flavor(compression_level=0)\n' "$norm" >"$in/ins/level0.alls"
printf 'input_conversion(input_layer1, bgr_to_rgb)\n%s\n' "$norm" >"$in/ins/conv.alls"

# ---- the cases ---------------------------------------------------------------------------------
# One line per case: NAME|SOURCE|PARSE-ARGS|SCRIPT|CALIB|INPUT|QUICK
#   SOURCE: an .onnx (parsed) or a .har (taken as the parsed archive if it is one, else as the
#   optimized one); SCRIPT "-" = none; CALIB "-" = parse and info only; INPUT: the data emulated
#   and run; QUICK 1 = in the --quick subset.
s="$repo/samples"
f="$repo/tests/fixtures"
i="$in/ins"
cases=(
  "sample_demo|$s/sample.onnx||$s/sample.alls|$s/sample_calib.npy|$in/sample_in.npy|1"
  "sample_correct|$s/sample.onnx||$s/sample_correct.alls|$s/sample_calib.npy|$in/sample_in.npy|0"
  "sample_default|$s/sample.onnx||-|$s/sample_calib.npy|$in/sample_in.npy|0"
  "tiny_har|$s/tiny.har||-|$s/tiny_calib.npy|$s/tiny_calib.npy|1"
  "diag_parsed|$in/parsed.har||-|$s/tiny_calib.npy|$s/tiny_calib.npy|0"
  "diag_quantized|$in/quantized.har||-|$s/tiny_calib.npy|$s/tiny_calib.npy|1"
  "conv|$f/onnx/conv.onnx||-|$in/conv.npy|$in/conv.npy|1"
  "conv_named|$f/onnx/conv.onnx|--net-name tiny|-|$in/conv_d.npy|$in/conv_d.npy|0"
  "nms_head_cut|$f/onnx/nms_head.onnx|--end-node-names mp|-|-|-|0"
  "nms_head_mid|$f/onnx/nms_head.onnx|--start-node-names mp --end-node-names mp --net-name mid --hw-arch hailo8l|-|-|-|0"
  "small_optimize_cli|$f/optimize/small_cnn.onnx||$in/optimize_cli.alls|$in/opt_calib.npy|$in/opt_calib.npy|1"
  "small_mixed|$f/optimize/small_cnn.onnx||$in/mixed.alls|$in/small_calib.npy|$in/small_in.npy|0"
  "small_w4|$f/optimize/small_cnn.onnx||$in/w4.alls|$in/small_calib.npy|$in/small_in.npy|1"
  "by_hand|$in/tiny.onnx||-|$in/data.npy|$in/data.npy|1"
  "ins_bn_norm_ok|$i/bn_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|1"
  "ins_bn_algo_big|$i/bn_net.onnx||$i/algo_big.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_algo_bad|$i/bn_net.onnx||$i/algo_bad.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_small|$i/bn_net.onnx||$i/small.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_level3|$i/bn_net.onnx||$i/level3.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_level0|$i/bn_net.onnx||$i/level0.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_implicit|$i/bn_net.onnx||$i/compress_implicit.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_explicit|$i/bn_net.onnx||$i/compress_explicit.alls|$i/calib_rgb.npy|$in/rgb_in.npy|1"
  "ins_bn_norm_01|$i/bn_net.onnx||$i/norm_01.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_none|$i/bn_net.onnx||$i/none.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bn_bgr|$i/bn_net.onnx||$i/conv.alls|$i/calib_bgr.npy|$in/rgb_in.npy|0"
  "ins_nobn|$i/nobn_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_edge_bn|$i/edge_bn_net.onnx||$i/hp.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_edge_bn_norm|$i/edge_bn_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_tail|$i/tail_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_bounded|$i/bounded_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_tiny|$i/tiny_net.onnx||$i/none.alls|$i/tiny_calib.npy|$i/tiny_calib.npy|0"
  "ins_ident|$i/ident_net.onnx||$i/none.alls|$i/clip_hi20.npy|$i/clip_hi20.npy|0"
  "ins_gap|$i/gap_net.onnx||$i/norm_ok.alls|$i/calib_bright.npy|$i/calib_bright.npy|0"
  "ins_concat|$i/concat_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|1"
  "ins_twoout|$i/twoout_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|0"
  "ins_hp|$i/hp_net.onnx||$i/hp.alls|$i/calib_rgb.npy|$in/rgb_in.npy|1"
  "ins_silu|$i/silu_net.onnx||$i/norm_ok.alls|$i/calib_rgb.npy|$in/rgb_in.npy|1"
)
if [ $quick -eq 0 ]; then
  while read -r c; do
    cases+=("pattern_$c|$f/onnx/patterns/$c.onnx||-|$in/patterns/$c.nhwc.npy|$in/patterns/$c.nhwc.npy|0")
  done < <("$py" "$repo/tests/models/pattern_cases.py" list)
  # the real models: the given cache, this checkout's, then the main checkout's of this repository
  common=$(cd "$repo" && cd "$(git rev-parse --git-common-dir)/.." && pwd)
  cache=""
  for c in ${HQ_MODEL_CACHE:-} "$repo/.cache/models" "$common/.cache/models"; do
    if [ -d "$c/ocr" ] || [ -d "$c/torch" ]; then cache=$c; break; fi
  done
  if [ $fetch -eq 1 ]; then
    HQ_MODEL_CACHE=${cache:-$repo/.cache/models} "$repo/tests/models/fetch_models.sh" >/dev/null ||
      echo "compare_trees.sh: fetch_models.sh failed; using what the cache has" >&2
    cache=${cache:-$repo/.cache/models}
  fi
  if [ -n "$cache" ]; then
    ocr="$cache/ocr"
    if [ -f "$ocr/ch_PP-OCRv4_det_infer.onnx" ]; then
      cases+=("real_ppocr_det|$ocr/ch_PP-OCRv4_det_infer.onnx|--tensor-shapes 1,3,96,96|-|$in/det.npy|$in/det.npy|0")
    fi
    if [ -f "$ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx" ]; then
      cases+=("real_ppocr_cls|$ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx|--tensor-shapes 1,3,48,192|-|$in/cls.npy|$in/cls.npy|0")
    fi
    for m in resnet18 mobilenet_v2; do
      if [ -f "$cache/torch/$m.onnx" ] && [ -f "$cache/torch/input_nhwc.npy" ]; then
        cases+=("real_$m|$cache/torch/$m.onnx||-|$cache/torch/input_nhwc.npy|$cache/torch/input_nhwc.npy|0")
      fi
    done
  fi
fi

# ---- running one case with one build -----------------------------------------------------------

# step NAME COMMAND...: runs in the current folder, stdout to NAME.out, stderr to NAME.err, the
# exit status appended to steps.txt
step() {
  local name=$1 rc=0
  shift
  "$@" >"$name.out" 2>"$name.err" </dev/null || rc=$?
  echo "$name $rc" >>steps.txt
  return 0
}

run_case() { # BUILD_DIR OUT_DIR NAME SOURCE PARSE_ARGS SCRIPT CALIB INPUT
  local bin=$1 dir=$2 name=$3 source=$4 parse_args=$5 script=$6 calib=$7 input=$8
  local hq="$bin/hq" diag="$bin/hq-diag" q=""
  rm -rf "$dir"
  mkdir -p "$dir"
  (
    cd "$dir"
    : >steps.txt
    local parsed=parsed.har
    # shellcheck disable=SC2086 # PARSE_ARGS is a word list
    case $source in
      *.onnx) step parse "$hq" parse "$source" -o parsed.har $parse_args ;;
      *.har)
        local state
        state=$("$hq" info "$source" 2>/dev/null || true)
        if grep -q "parsed_model" <<<"$state"; then parsed=$source; else q=$source; fi ;;
    esac
    if [ -e "$parsed" ]; then
      step info_parsed "$hq" info "$parsed"
      if [ "$input" != "-" ]; then
        step emulate_parsed "$hq" emulate "$parsed" -d "$input" -o parsed_native.npz
      fi
      if [ "$calib" != "-" ]; then
        local extra=()
        if [ "$script" != "-" ]; then extra=(-m "$script"); fi
        step optimize "$hq" optimize "$parsed" -d "$calib" "${extra[@]}" -o q.har
        if [ -e q.har ]; then q=q.har; fi
      fi
    fi
    [ -n "$q" ] || exit 0
    step info "$hq" info "$q"
    for t in native fp_optimized quantized; do
      step "emulate_$t" "$hq" emulate "$q" -d "$input" --target $t -o "emu_$t.npz"
    done
    step emulate_quantized_ref env HQ_EMULATE_KERNELS=reference "$hq" emulate "$q" -d "$input" \
      --target quantized -o emu_quantized_ref.npz
    step compile "$hq" compile "$q" -o q.hqx --har q_compiled.har
    if [ -e q.hqx ]; then step run "$hq" run q.hqx -d "$input" -o run.npz; fi
    if [ -e q_compiled.har ]; then step run_har "$hq" run q_compiled.har -d "$input" -o run_har.npz; fi
    step analyze_noise "$hq" analyze-noise "$q" -d "$calib" -o noise.har
    mkdir -p diag
    step diag "$diag" --no-interactive -d "$calib" --json diag/findings.json \
      --log-path diag/hq-diag.log --output-model-script diag/script.alls --report diag/report.html "$q"
  )
  normalise "$bin" "$dir"
}

# normalise BUILD_DIR DIR: see the header (the build folder, time stamps of the hq-diag log,
# durations on stdout)
normalise() {
  local bin=$1 dir=$2 file
  for file in "$dir"/*.out "$dir"/*.err "$dir/diag/hq-diag.log" "$dir/diag/findings.json"; do
    [ -f "$file" ] || continue
    sed -i "s#$bin/#BUILD/#g" "$file"
  done
  if [ -f "$dir/diag/hq-diag.log" ]; then
    sed -i -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z /TIME /' "$dir/diag/hq-diag.log"
  fi
  for file in "$dir"/*.out; do
    [ -f "$file" ] || continue
    sed -i -E 's#[0-9]+(\.[0-9]+)?( ?)(s|ms|us|seconds|ms/sample|frames/s|samples/s|fps)\b#N\2\3#g' "$file"
  done
}

# ---- run both sides, then compare --------------------------------------------------------------

echo "A: $rev_a ($dir_a)"
echo "B: $rev_b ($dir_b)"
start=$SECONDS
selected=()
for c in "${cases[@]}"; do
  IFS='|' read -r name source parse_args script calib input in_quick <<<"$c"
  [ $quick -eq 1 ] && [ "$in_quick" != 1 ] && continue
  selected+=("$c")
done
# run_side BUILD_DIR a|b: every selected case with one build
run_side() {
  local bin=$1 side=$2 c name source parse_args script calib input in_quick
  for c in "${selected[@]}"; do
    IFS='|' read -r name source parse_args script calib input in_quick <<<"$c"
    run_case "$bin" "$out/$side/$name" "$name" "$source" "$parse_args" "$script" "$calib" "$input"
  done
}
# the two sides side by side (most steps use one core); --serial runs one after the other
if [ $serial -eq 1 ]; then
  run_side "$dir_a" a
  run_side "$dir_b" b
else
  run_side "$dir_a" a &
  pid_a=$!
  run_side "$dir_b" b &
  pid_b=$!
  wait $pid_a || die "the runs with $rev_a stopped"
  wait $pid_b || die "the runs with $rev_b stopped"
fi

same=0
different=0
for c in "${selected[@]}"; do
  name=${c%%|*}
  diffs=()
  while read -r file; do
    cmp -s "$out/a/$name/$file" "$out/b/$name/$file" || diffs+=("$file")
  done < <(cd "$out" && { (cd "a/$name" && find . -type f); (cd "b/$name" && find . -type f); } |
             sed 's#^\./##' | sort -u)
  if [ ${#diffs[@]} -eq 0 ]; then
    echo "same  $name"
    same=$((same + 1))
  else
    echo "DIFF  $name  ${diffs[*]}"
    different=$((different + 1))
  fi
done
echo "(outputs in $out/a and $out/b; $((SECONDS - start)) s for the runs)"
echo "$same same, $different different"
[ $different -eq 0 ]
