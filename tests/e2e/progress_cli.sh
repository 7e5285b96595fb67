#!/usr/bin/env bash
# The progress bar of the long passes: drawn on stderr when stderr is a terminal (tty_stderr.py
# gives the command a pseudo-terminal for stderr only), never when stderr is a pipe or a file, and
# not with --quiet; what the commands write to stdout and to files is the same either way.
# hq optimize --no-noise-analysis writes an archive without the layer_noise_analysis keys, and
# hq-diag's HighPrecision inspector still runs on it (it computes the SQNR itself from -d).
set -euo pipefail
py=/usr/bin/python3
tty="$py $HQ_SOURCE_DIR/tests/e2e/tty_stderr.py"
src="$HQ_SOURCE_DIR/tests/fixtures/optimize"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

"$HQ" parse "$src/small_cnn.onnx" -o small.har >/dev/null
"$py" -c "import numpy as np; np.save('calib.npy', np.random.RandomState(0).uniform(0, 255, (40, 16, 16, 3)).astype(np.float32))"
cr=$'\r'
has_bar() { grep -q "$2 \[[#.]*\] [0-9]*/[0-9]*" "$1" && grep -q "$cr" "$1"; }
no_bar() {  # nothing of a bar: no carriage return, no bar cells, no escape
  ! grep -q "$cr" "$1" && ! grep -q '\[[#.]\{30\}\]' "$1" && ! grep -q $'\033' "$1"
}
absent() { if grep -q "$@"; then echo "unexpected: $*"; return 1; fi; }
no_timing() { sed -E 's/[0-9]+\.[0-9]+ s(;|$)/T s\1/g' "$1"; }  # optimize prints its run times

# hq optimize: calibration and the closing noise analysis
$tty opt_tty.out opt_tty.err -- "$HQ" optimize small.har -d calib.npy -o q_tty.har
has_bar opt_tty.err calibration
has_bar opt_tty.err 'noise analysis (simple)'
grep -q '100%' opt_tty.err
absent $'\033' opt_tty.err   # no escape sequence: NO_COLOR terminals get none
"$HQ" optimize small.har -d calib.npy -o q_pipe.har > opt_pipe.out 2> opt_pipe.err
[ ! -s opt_pipe.err ]   # nothing on stderr, as before there was a bar
"$HQ" optimize small.har -d calib.npy -o q_pipe2.har 2>&1 | cat > opt_pipe2.out
no_bar opt_pipe2.out
cmp q_tty.har q_pipe.har
diff <(no_timing opt_tty.out | sed 's/q_tty/Q/') <(no_timing opt_pipe.out | sed 's/q_pipe/Q/')
$tty opt_q.out opt_q.err -- "$HQ" optimize small.har -d calib.npy -o q_quiet.har --quiet
[ ! -s opt_q.err ]
cmp q_quiet.har q_pipe.har

# hq emulate, on every target
for target in native fp_optimized quantized; do
  $tty emu_tty.out emu_tty.err -- "$HQ" emulate q_pipe.har -d calib.npy --target $target -b 4
  has_bar emu_tty.err emulation
  "$HQ" emulate q_pipe.har -d calib.npy --target $target -b 4 > emu_pipe.out 2> emu_pipe.err
  [ ! -s emu_pipe.err ]
  cmp emu_tty.out emu_pipe.out
  $tty emu_q.out emu_q.err -- "$HQ" emulate q_pipe.har -d calib.npy --target $target -b 4 -q
  [ ! -s emu_q.err ]
  cmp emu_q.out emu_pipe.out
done
$tty /dev/null /dev/null -- "$HQ" emulate q_pipe.har -d calib.npy --target quantized -o emu_tty.npz
"$HQ" emulate q_pipe.har -d calib.npy --target quantized -o emu_pipe.npz 2> emu_pipe.err
[ ! -s emu_pipe.err ]
cmp emu_tty.npz emu_pipe.npz

# hq analyze-noise, advanced (one float run per layer per batch)
cp q_pipe.har noise_tty.har && cp q_pipe.har noise_pipe.har
$tty noise_tty.out noise_tty.err -- "$HQ" analyze-noise noise_tty.har -d calib.npy
has_bar noise_tty.err 'noise analysis (advanced)'
"$HQ" analyze-noise noise_pipe.har -d calib.npy > noise_pipe.out 2> noise_pipe.err
[ ! -s noise_pipe.err ]
cmp noise_tty.har noise_pipe.har
diff <(sed 's/noise_tty/N/' noise_tty.out) <(sed 's/noise_pipe/N/' noise_pipe.out)

# hq run: the program run a few samples at a time on a terminal gives the same bytes
"$HQ" compile q_pipe.har -o model.hqx > /dev/null
$tty /dev/null run_tty.err -- "$HQ" run model.hqx -d calib.npy -o run_tty.npz
has_bar run_tty.err run
"$HQ" run model.hqx -d calib.npy -o run_pipe.npz > /dev/null 2> run_pipe.err
[ ! -s run_pipe.err ]
cmp run_tty.npz run_pipe.npz
$tty /dev/null run_q.err -- "$HQ" run model.hqx -d calib.npy -o run_q.npz --quiet
[ ! -s run_q.err ]

# every command takes --quiet
for cmd in info parse emulate optimize compile run profile analyze-noise compare; do
  "$HQ" $cmd --help | grep -q -- '-q, --quiet' || { echo "hq $cmd --help lacks --quiet"; exit 1; }
done
"$HQ" info q_pipe.har -q > /dev/null

# --no-noise-analysis: no layer_noise_analysis keys, and the log says it was skipped
"$HQ" optimize small.har -d calib.npy -o q_nonoise.har --no-noise-analysis > nonoise.out
grep -q '^\[info\] noise analysis: skipped' nonoise.out
absent 'noise analysis (simple)' nonoise.out
"$py" - <<'PY'
import io, tarfile, zipfile
def keys(path):
    t = tarfile.open(path)
    member = next(n for n in t.getnames() if n.endswith(".q.npz"))
    return zipfile.ZipFile(io.BytesIO(t.extractfile(member).read())).namelist()
with_noise, without = keys("q_pipe.har"), keys("q_nonoise.har")
assert any("layer_noise_analysis/snr" in k for k in with_noise), with_noise
assert not any("layer_noise_analysis" in k for k in without), without
assert sorted(without) == sorted(k for k in with_noise if "layer_noise_analysis" not in k)
PY

# hq-diag on that archive: with -d the HighPrecision inspector measures the SQNR itself ...
"$HQ_DIAG" -d calib.npy -c 16 --no-interactive --order HighPrecision --log-path diag.log \
  --json nonoise.json q_nonoise.har > diag.out
grep -q 'Module: HighPrecision' diag.out
absent 'Skipping HighPrecision' diag.out
# ... and without data it is skipped, saying how to get the analysis
"$HQ_DIAG" --no-interactive --order HighPrecision --log-path diag2.log q_nonoise.har > diag2.out
grep -q 'Skipping HighPrecision.*no noise analysis in the archive' diag2.out

# hq-diag's statistics pass draws the same bar; --quiet turns it off
$tty diag_tty.out diag_tty.err -- "$HQ_DIAG" -d calib.npy -c 16 --no-interactive \
  --order HighPrecision Clipping --log-path diag3.log q_nonoise.har
has_bar diag_tty.err 'Collecting statistics'
$tty diag_q.out diag_q.err -- "$HQ_DIAG" -d calib.npy -c 16 --no-interactive --quiet \
  --order HighPrecision Clipping --log-path diag4.log q_nonoise.har
[ ! -s diag_q.err ]
echo "progress bar on terminals only; --quiet and --no-noise-analysis work"
