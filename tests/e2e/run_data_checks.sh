#!/usr/bin/env bash
# `hq run` checks its data like `hq emulate`: an array in the wrong layout (NCHW, or the right
# number of values in the wrong shape) and an array holding NaN or Inf are refused with one line
# naming the file and what is wrong, exit 2, and no output written; `hq emulate` says the same
# about the same file. Good data still runs, from a .npy, a .npz keyed by scoped or bare name,
# and through a compiled archive, all to the same bytes.
set -euo pipefail
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
har="$HQ_SOURCE_DIR/samples/tiny.har"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
"$HQ" optimize "$har" -d "$calib" -o "$work/q.har" >/dev/null
"$HQ" compile "$work/q.har" -o "$work/q.hqx" --har "$work/qc.har" >/dev/null

"$py" - "$calib" "$work" <<'EOF'
import sys
import numpy as np
calib, work = sys.argv[1:3]
x = np.load(calib)  # (16, 16, 16, 3)
np.save(f"{work}/nchw.npy", np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
np.save(f"{work}/reshaped.npy", x.reshape(x.shape[0], 48, 16, 1))
np.save(f"{work}/rank3.npy", x.reshape(x.shape[0], 256, 3))
y = x.copy(); y[2, 1, 1, 0] = np.nan; np.save(f"{work}/nan.npy", y)
y = x.copy(); y[3, 0, 0, 1] = np.inf; np.save(f"{work}/inf.npy", y)
y = x.astype(np.float64); y[5, 2, 3, 2] = -np.inf; np.save(f"{work}/inf64.npy", y)
np.savez(f"{work}/nan.npz", input_layer1=np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x).astype(np.float32))
np.savez(f"{work}/wrongkey.npz", images=x)
np.savez(f"{work}/bare.npz", input_layer1=x)
np.savez(f"{work}/scoped.npz", **{"tiny/input_layer1": x})
EOF

# refused <data file> <expected words>
refused() {
  local data=$work/$1 words=$2 code=0
  rm -f "$work/out.npz"
  "$HQ" run "$work/q.hqx" -d "$data" -o "$work/out.npz" >"$work/stdout" 2>"$work/err" || code=$?
  [ $code -eq 2 ] || { echo "FAIL $1: exit $code, expected 2"; fail=1; }
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "FAIL $1: expected one line on stderr:"; cat "$work/err"; fail=1; }
  grep -qF -- "$data" "$work/err" || { echo "FAIL $1: message does not name the file"; fail=1; }
  grep -qF -- "$words" "$work/err" || { echo "FAIL $1: message lacks '$words':"; cat "$work/err"; fail=1; }
  [ ! -e "$work/out.npz" ] || { echo "FAIL $1: an output was written"; fail=1; }
  [ ! -s "$work/stdout" ] || { echo "FAIL $1: printed on stdout"; fail=1; }
  # hq emulate says the same about the same file
  code=0
  "$HQ" emulate "$work/q.har" -d "$data" 2>"$work/err_emulate" >/dev/null || code=$?
  [ $code -eq 2 ] || { echo "FAIL $1: hq emulate exit $code"; fail=1; }
  [ "$(sed 's/^hq emulate: //' "$work/err_emulate")" = "$(sed 's/^hq run: //' "$work/err")" ] ||
    { echo "FAIL $1: hq run and hq emulate differ:"; cat "$work/err" "$work/err_emulate"; fail=1; }
  echo "ok   $1: $(cat "$work/err")"
}
refused nchw.npy "looks like NCHW: transpose to NHWC"
refused reshaped.npy "shape (16, 48, 16, 1) does not match input layer 'tiny/input_layer1' (-1, 16, 16, 3)"
refused rank3.npy "shape (16, 256, 3) does not match"
refused nan.npy "sample 2: value at (1, 1, 0) is NaN"
refused inf.npy "sample 3: value at (0, 0, 1) is infinite"
refused inf64.npy "sample 5: value at (2, 3, 2) is infinite"
refused nan.npz "array 'input_layer1': sample 0: value at (0, 2, 1) is NaN"
refused wrongkey.npz "no array for input layer 'tiny/input_layer1' (keys present: 'images')"

# good data: every way in gives the same bytes
"$HQ" run "$work/q.hqx" -d "$calib" -o "$work/npy.npz"
"$HQ" run "$work/q.hqx" -d "$work/bare.npz" -o "$work/bare_out.npz"
"$HQ" run "$work/q.hqx" -d "$work/scoped.npz" -o "$work/scoped_out.npz"
"$HQ" run "$work/qc.har" -d "$calib" -o "$work/har_out.npz"
for f in bare_out scoped_out har_out; do
  cmp -s "$work/npy.npz" "$work/$f.npz" || { echo "FAIL $f.npz differs from the .npy run"; fail=1; }
done
[ $fail -eq 0 ] && echo "hq run refuses bad data like hq emulate and runs good data"
exit $fail
