#!/usr/bin/env bash
# Every command checks where it will write before it does any work: an output whose folder does
# not exist, whose "folder" is a file, that names an existing folder, or (when not root) whose
# folder is read-only, is refused with one line naming the option and the path, exit 2, nothing on
# stdout and no file written. Covers hq optimize, emulate, compile, run, parse, analyze-noise and
# hq-diag's --log-path, --output-model-script, --json and --report.
set -euo pipefail
work=$(mktemp -d)
logs=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work" "$logs"' EXIT
fail=0
src=$HQ_SOURCE_DIR
har=$src/samples/tiny.har
calib=$src/samples/tiny_calib.npy
"$HQ" optimize "$har" -d "$calib" -o "$work/q.har" >/dev/null
"$HQ" compile "$work/q.har" -o "$work/q.hqx" --har "$work/qc.har" >/dev/null
mkdir "$work/dir" "$work/out"
touch "$work/file"
bad_paths=("$work/missing/x.out" "$work/file/x.out" "$work/dir" "$work/dir/")
if [ "$(id -u)" != 0 ]; then
  mkdir "$work/readonly" && chmod a-w "$work/readonly"
  bad_paths+=("$work/readonly/x.out")
fi

# refused <option> <path> <command...>: the command fails at once, naming <option> and <path>
refused() {
  local option=$1 path=$2; shift 2
  local code=0 before after
  before=$(cd "$work" && find . | sort)
  (cd "$work/out" && "$@") >"$logs/stdout" 2>"$logs/err" || code=$?
  after=$(cd "$work" && find . | sort)
  local what
  what="$(basename "$1") $2 $option $path"
  [ $code -eq 2 ] || { echo "FAIL $what: exit $code, expected 2"; fail=1; }
  [ "$(wc -l <"$logs/err")" -eq 1 ] || { echo "FAIL $what: expected one line on stderr:"; cat "$logs/err"; fail=1; }
  grep -qF -- "$option $path:" "$logs/err" || { echo "FAIL $what: message does not name '$option $path':"; cat "$logs/err"; fail=1; }
  [ ! -s "$logs/stdout" ] || { echo "FAIL $what: worked before refusing: $(head -c 200 "$logs/stdout")"; fail=1; }
  [ "$before" = "$after" ] || { echo "FAIL $what: files were written: $(diff <(echo "$before") <(echo "$after") | tail -n +2)"; fail=1; }
  echo "ok   $(cat "$logs/err")"
}

for p in "${bad_paths[@]}"; do
  refused -o "$p" "$HQ" optimize "$har" -d "$calib" -o "$p"
  refused -o "$p" "$HQ" emulate "$work/q.har" -d "$calib" -o "$p"
  refused -o "$p" "$HQ" compile "$work/q.har" -o "$p" --har "$work/out/c.har"
  refused --har "$p" "$HQ" compile "$work/q.har" -o "$work/out/c.hqx" --har "$p"
  refused -o "$p" "$HQ" run "$work/q.hqx" -d "$calib" -o "$p"
  refused -o "$p" "$HQ" parse "$src/tests/fixtures/onnx/conv.onnx" -o "$p"
  refused -o "$p" "$HQ" analyze-noise "$work/q.har" -d "$calib" -o "$p"
  for option in --log-path --output-model-script --json --report; do
    refused "$option" "$p" "$HQ_DIAG" --no-interactive -d "$calib" "$option" "$p" "$work/q.har"
  done
done
# a default output next to the input: hq optimize and hq compile name it after the archive
refused output "$work/dir/x/tiny_quantized.har" "$HQ" optimize "$work/dir/x/tiny.har" -d "$calib"
refused output "$work/dir/x/q.hqx" "$HQ" compile "$work/dir/x/q.har"

# good paths still work, and an existing output file is replaced
"$HQ" emulate "$work/q.har" -d "$calib" -o "$work/out/e.npz" >/dev/null
"$HQ" emulate "$work/q.har" -d "$calib" -o "$work/out/e.npz" >/dev/null
"$HQ" run "$work/q.hqx" -d "$calib" -o "$work/out/r.npz" >/dev/null
(cd "$work/out" && "$HQ" parse "$src/tests/fixtures/onnx/conv.onnx" >/dev/null)
(cd "$work/out" && "$HQ_DIAG" --no-interactive -d "$calib" --json r.json "$work/q.har" >/dev/null) || [ $? -eq 1 ]
for f in e.npz r.npz r.json hq-diag.log; do
  [ -s "$work/out/$f" ] || { echo "FAIL $f was not written"; fail=1; }
done
[ $fail -eq 0 ] && echo "every output path is checked before any work"
exit $fail
