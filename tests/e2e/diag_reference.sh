#!/usr/bin/env bash
# hq-diag --reference adds the stage "native vs reference" (the translation) to the headline. On
# the bundled sample quantized without a script (its native graph is the parsed one), a reference
# made by `hq emulate` of the parsed archive on the same samples is identical (the stage reads
# "identical", 200 in --json) and the verdict healthy; a perturbed reference falls below the
# 10 dB floor and the verdict names the translation (exit 1), on the parsed archive too (a
# pre-quantization run, where it is the only stage); arrays taken in output order work
# as keyed ones; a wrong shape or too few samples is one line naming the file, exit 2, nothing
# written.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
samples="$HQ_SOURCE_DIR/samples"
calib="$samples/sample_calib.npy"
cd "$work"
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -d "$calib" -o sample_q.har >/dev/null
"$HQ" emulate sample.har -d "$calib" -o ref.npz -q
/usr/bin/python3 - <<'PY'
import numpy as np
ref = dict(np.load("ref.npz"))
(key, value), = ref.items()
noise = np.random.default_rng(0).normal(0, 1, value.shape) * np.abs(value).mean()
np.savez("perturbed.npz", **{key: (value + noise).astype(np.float32)})
np.savez("in_order.npz", value)
np.savez("wrong_shape.npz", **{key: value[:, :5]})
np.savez("few.npz", **{key: value[:10]})
PY

fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
run() { # name, reference file: runs hq-diag, leaves name.out, name.json and the exit status
  set +e
  "$HQ_DIAG" --no-interactive -d "$calib" --reference "$2" --json "$1.json" --log-path "$1.log" \
    sample_q.har >"$1.out" 2>"$1.err" </dev/null
  echo $? >"$1.rc"
  set -e
}
stage() { # json file: the native_vs_reference_db of the only output
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["output_sqnr_db"][0]["native_vs_reference_db"])' "$1"
}

run same ref.npz
check "the same outputs: the stage reads identical, the verdict is healthy" \
  bash -c 'grep -q "native vs reference" same.out &&
           grep -Eq "output_layer1 \(concat1\) +identical" same.out &&
           grep -q "^\[info\] Verdict: healthy" same.out'
check "the same outputs: --json native_vs_reference_db 200" [ "$(stage same.json)" = 200 ]

run perturbed perturbed.npz
check "a perturbed reference: the verdict names the translation (exit 1)" \
  bash -c 'grep -q "^\[error\] Verdict: the translation breaks the model" perturbed.out &&
           [ "$(cat perturbed.rc)" = 1 ] && ! grep -q "Verdict: the translation" same.out'
check "a perturbed reference: --json below 10 dB, the verdict an error" \
  /usr/bin/python3 - <<'PY'
import json
d = json.load(open("perturbed.json"))
assert d["output_sqnr_db"][0]["native_vs_reference_db"] < 10, d["output_sqnr_db"]
assert d["verdict"]["level"] == "error" and "translation" in d["verdict"]["summary"], d["verdict"]
PY

# before quantization: the translation is the one stage there is, the cheap check first
set +e
"$HQ_DIAG" --no-interactive -d "$calib" --reference perturbed.npz --json parsed.json \
  --log-path parsed.log sample.har >parsed.out 2>&1 </dev/null
echo $? >parsed.rc
set -e
check "a parsed archive: the stage table has the translation, the verdict names it (exit 1)" \
  bash -c 'grep -Eq "Output SQNR \(dB\) +native vs reference +\(64 samples\)$" parsed.out &&
           grep -q "^\[error\] Verdict: the translation breaks the model" parsed.out &&
           [ "$(cat parsed.rc)" = 1 ]'

run in_order in_order.npz
check "arrays in output order count as keyed ones" [ "$(stage in_order.json)" = 200 ]

for bad in wrong_shape few; do
  mkdir "$bad" && cd "$bad"
  set +e
  "$HQ_DIAG" --no-interactive -d "$calib" --reference "../$bad.npz" --json out.json ../sample_q.har \
    >out.txt 2>err.txt </dev/null
  rc=$?
  set -e
  cd ..
  check "$bad: exit 2, one line naming the file" \
    bash -c '[ '$rc' -eq 2 ] && [ "$(wc -l <'$bad'/err.txt)" -eq 1 ] &&
             grep -q "^hq-diag: ../'$bad'.npz: array " '$bad'/err.txt'
  check "$bad: nothing written" \
    bash -c '[ "$(ls '$bad' | tr "\n" " ")" = "err.txt out.txt " ] && [ ! -s '$bad'/out.txt ]'
done
exit $fail
