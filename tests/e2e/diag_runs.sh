#!/usr/bin/env bash
# hq-diag runs that share a folder never mix: each log has its own files folder (<log stem>_files),
# so two runs started at once with different --log-path write two complete, separate sets of
# files (log, images, JSON, report, the default model script under two names); a run whose log
# another run holds is refused (exit 2, naming the process, nothing written) and the lock dies
# with its holder (no stale lock after a crash); a files folder that is not a folder is refused
# before any work; -c larger than the dataset says so in one console line.
set -euo pipefail
work=$(mktemp -d)
holder=
trap '[ -z "$holder" ] || kill "$holder" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
samples="$HQ_SOURCE_DIR/samples"
calib="$samples/sample_calib.npy"
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample.alls" -d "$calib" -o q.har >/dev/null

fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
run() { # name: one run with its own log, JSON and report; console in <name>.txt, rc in <name>.rc
  local code=0
  "$HQ_DIAG" --no-interactive -d "$calib" --log-path "$1.log" --json "$1.json" --report "$1.html" \
    q.har >"$1.txt" 2>&1 </dev/null || code=$?
  echo $code >"$1.rc"
}

mkdir both && cd both && ln -s ../q.har q.har
run a & run b & wait
complete() { # name: the run ended by its findings and wrote its whole set, and only its own
  local me=$1 other=$2
  [ "$(cat "$me.rc")" -eq 1 ] && [ -s "$me.json" ] && [ -s "$me.html" ] &&
    [ -s "${me}_files/standard.jpg" ] && [ -s "${me}_files/inverse.jpg" ] &&
    [ "$(grep -c "\] hq-diag .*, q.har, interactive: no" "$me.log")" -eq 1 ] &&
    grep -q "wrote ${me}_files/standard.jpg" "$me.log" && ! grep -q "${other}_files" "$me.log" &&
    grep -q "in ${me}_files: compare them" "$me.txt" && grep -q "Done: .*log in $me.log" "$me.txt" &&
    /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["exit_status"] == 1 and d["files"]' "$me.json"
}
check "two runs at once in one folder, different logs: run a's set is complete and its own" complete a b
check "  ... and run b's" complete b a
check "  ... their images are the same data in two files each" \
  bash -c 'cmp -s a_files/standard.jpg b_files/standard.jpg && cmp -s a_files/inverse.jpg b_files/inverse.jpg'
check "  ... the default model script under two names, neither half-written" \
  bash -c '[ -s diagnostic_sample.alls ] && [ -s diagnostic_sample_1.alls ] &&
           cmp -s diagnostic_sample.alls diagnostic_sample_1.alls && [ ! -e diagnostic_sample_2.alls ]'
cd ..

# one log, held by another process: refused, naming it; nothing written
mkdir held && cd held && ln -s ../q.har q.har
printf 'an earlier run\n' >hq-diag.log
/usr/bin/python3 -c 'import fcntl, sys, time; f = open("hq-diag.log", "a"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(60)' >lock.txt &
holder=$!
for _ in $(seq 50); do grep -q locked lock.txt 2>/dev/null && break; sleep 0.1; done
before=$(find . -type f -newer lock.txt ! -name 'held.*' | sort; cat hq-diag.log)
set +e
"$HQ_DIAG" --no-interactive -d "$calib" --json held.json q.har >held.out 2>held.err </dev/null
code=$?
set -e
check "a run whose log another process holds: exit 2, one line naming the log and the process" \
  bash -c "[ $code -eq 2 ] && [ \$(wc -l <held.err) -eq 1 ] && [ ! -s held.out ] &&
           grep -qx 'hq-diag: --log-path hq-diag.log: in use by another hq-diag run (process $holder); give each run its own --log-path' held.err"
check "  ... nothing written, the holder's log untouched" \
  bash -c '[ "$(find . -type f -newer lock.txt ! -name "held.*" | sort; cat hq-diag.log)" = "$1" ] && [ ! -e held.json ] && [ ! -e hq-diag_files ]' _ "$before"
kill -9 "$holder"; wait "$holder" 2>/dev/null || true; holder=
check "  ... once the holder is gone (killed: no clean-up), the log is free again" \
  bash -c '"$HQ_DIAG" --no-interactive -d "$1" q.har >free.txt 2>&1 </dev/null; [ $? -eq 1 ] &&
           ! grep -q "an earlier run" hq-diag.log && [ -s hq-diag_files/standard.jpg ]' _ "$calib"
cd ..

# the files folder is checked with the other outputs
mkdir blocked && cd blocked && ln -s ../q.har q.har && touch r_files
set +e
"$HQ_DIAG" --no-interactive -d "$calib" --log-path r.log q.har >out.txt 2>err.txt </dev/null
code=$?
set -e
check "a files folder that is a file: exit 2 before any work, one line, nothing written" \
  bash -c "[ $code -eq 2 ] && [ ! -s out.txt ] && [ \$(wc -l <err.txt) -eq 1 ] &&
           grep -qx 'hq-diag: --log-path r.log: r_files, the folder of the inspectors. files, is not a folder' err.txt &&
           [ \"\$(ls)\" = \"\$(printf 'err.txt\nout.txt\nq.har\nr_files')\" ]"
cd ..

# -c beyond the dataset (64 samples)
mkdir count && cd count && ln -s ../q.har q.har
"$HQ_DIAG" --no-interactive -d "$calib" -c 500 --json c500.json q.har >c500.txt 2>&1 </dev/null || true
"$HQ_DIAG" --no-interactive -d "$calib" -c 10 --log-path c10.log q.har >c10.txt 2>&1 </dev/null || true
check "-c 500 on a dataset of 64: one line saying so, and 64 samples used" \
  bash -c '[ "$(grep -c "samples than the dataset holds" c500.txt)" -eq 1 ] &&
           grep -qx "\[warning\] -c 500 asked for more samples than the dataset holds; using all 64" c500.txt &&
           /usr/bin/python3 -c "import json; assert json.load(open(\"c500.json\"))[\"samples\"] == 64"'
check "  ... -c 10 uses 10 and says nothing of it" \
  bash -c '! grep -q "samples than the dataset holds" c10.txt && grep -q "(10 samples)" c10.txt'
cd ..

[ $fail -eq 0 ] && echo "runs in one folder never mix"
exit $fail
