#!/usr/bin/env bash
# The interactive fix-up prompts, driven through a real pseudo-terminal (diag_pty.py): yes/no and
# none/warning/all/pick questions answered y, n, all, pick, an invalid answer re-asked until valid,
# Enter taking the default, the overwrite question; each run's model script is checked. Also:
# colours on a terminal, none with NO_COLOR; --accept none/all.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
good="$HQ_BUILD_DIR/tests/plugins/good"
calib="$HQ_SOURCE_DIR/samples/tiny_calib.npy"
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_fixtures.py" "$work"
cd "$work"
fail=0
drive() { # steps file, script path, extra hq-diag args...
  local steps=$1 out=$2; shift 2
  set +e
  /usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_pty.py" "$steps" -- "$HQ_DIAG" --plugin-path "$good" \
    --order TestFindings TestClipping -d "$calib" --output-model-script "$out" "$@" quantized.har \
    >transcript.txt 2>&1
  rc=$?
  set -e
  tr -d '\r' <transcript.txt >t.txt
}
check() {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; sed 's/^/     | /' t.txt; fail=1; fi
}

# 1. y to the yes/no group, "all" to the clipping group, n to the compression group
cat >steps1 <<'S'
expect Use 16-bit precision for conv1? [Y/n]
send y
expect Clip the activation ranges? (none/warning/all/pick) [warning]
send all
expect Apply the recommended changes? [y/N]
send n
S
drive steps1 one.alls
check "answers y / all / n: exit 1 (error finding) and the prompts were shown" bash -c "[ $rc -eq 1 ]"
check "  y accepted the precision line (replacing the archive's a8_w8 line)" \
  bash -c 'grep -qx "quantization_param(conv1, precision_mode=a16_w16)" one.alls &&
           grep -q "^# hq-diag (TestFindings) replaced: quantization_param(conv1, precision_mode=a8_w8)" one.alls'
check "  all accepted both clipping lines, n refused the compression line" \
  bash -c 'grep -q "^pre_quantization_optimization(activation_clipping, layers=\[conv1\]" one.alls &&
           grep -q "^pre_quantization_optimization(activation_clipping, layers=\[conv2\]" one.alls &&
           ! grep -q "compression_level" one.alls'
check "  the console is coloured on a terminal" bash -c 'grep -q $'"'"'\033\[33m\[warning\]'"'"' t.txt'

# 2. n, then an invalid answer re-asked until valid, then Enter (default) — with NO_COLOR
cat >steps2 <<'S'
expect Use 16-bit precision for conv1? [Y/n]
send n
expect Clip the activation ranges? (none/warning/all/pick) [warning]
send maybe
expect Please answer none, warning, all or pick.
expect Clip the activation ranges? (none/warning/all/pick) [warning]
send none
expect Apply the recommended changes? [y/N]
send sure
expect Please answer y or n.
expect Apply the recommended changes? [y/N]
send yes
S
NO_COLOR=1 drive steps2 two.alls
check "answers n / invalid then none / invalid then yes" bash -c "[ $rc -eq 1 ]"
check "  n and none refused their lines, yes accepted the compression line" \
  bash -c '! grep -q "precision_mode=a16_w16" two.alls && ! grep -q "^pre_quantization" two.alls &&
           grep -qx "model_optimization_flavor(compression_level=0)" two.alls &&
           grep -qx "quantization_param(conv1, precision_mode=a8_w8)  # chosen by hand" two.alls'
check "  NO_COLOR: no escape sequences" bash -c '! grep -q $'"'"'\033\['"'"' t.txt'

# 3. Enter takes each default; the existing file is overwritten only after a yes
cat >steps3 <<'S'
expect Use 16-bit precision for conv1? [Y/n]
send
expect Clip the activation ranges? (none/warning/all/pick) [warning]
send
expect Apply the recommended changes? [y/N]
send
expect two.alls exists. Overwrite it? [y/N]
send y
S
drive steps3 two.alls
check "Enter takes the defaults (yes / warning / no) and y overwrites" \
  bash -c '[ '"$rc"' -eq 1 ] && grep -qx "quantization_param(conv1, precision_mode=a16_w16)" two.alls &&
           grep -q "layers=\[conv1\]" two.alls && ! grep -q "layers=\[conv2\]" two.alls &&
           ! grep -q "compression_level" two.alls && [ ! -e two_1.alls ]'

# 4. refusing the overwrite writes a numbered file; end of input takes the defaults
cat >steps4 <<'S'
expect Use 16-bit precision for conv1? [Y/n]
send n
expect Clip the activation ranges? (none/warning/all/pick) [warning]
eof
expect Apply the recommended changes? [y/N] n (end of input)
expect two.alls exists. Overwrite it? [y/N] n (end of input)
expect writing the model script to two_1.alls
S
cp two.alls before.alls
drive steps4 two.alls
check "end of input takes the defaults; no overwrite means a numbered name" \
  bash -c '[ '"$rc"' -eq 1 ] && cmp -s before.alls two.alls && [ -s two_1.alls ] && ! grep -q "precision_mode=a16_w16" two_1.alls &&
           grep -q "layers=\[conv1\]" two_1.alls && grep -q "writing the model script to two_1.alls" t.txt'

# 5. --no-interactive on a terminal asks nothing
cat >steps5 <<'S'
expect Done:
S
drive steps5 five.alls --no-interactive
check "--no-interactive on a terminal asks nothing and takes the defaults" \
  bash -c '[ '"$rc"' -eq 1 ] && ! grep -q "\[Y/n\]" t.txt && grep -qx "quantization_param(conv1, precision_mode=a16_w16)" five.alls'

# 5b. each line shows its level and its number within the group
check "  each recommendation is shown at its level, numbered within its group" \
  bash -c 'sed "s/\x1b\[[0-9;]*m//g" t.txt >plain.txt &&
           grep -q "^  \[warning\] 1\. pre_quantization_optimization(activation_clipping, layers=\[conv1\]" plain.txt &&
           grep -q "^  \[info\] 2\. pre_quantization_optimization(activation_clipping, layers=\[conv2\]" plain.txt'

# 5c. pick: an out-of-range number is asked again once with a hint, then 2 accepts only line 2
cat >steps5c <<'S'
expect Use 16-bit precision for conv1? [Y/n]
send n
expect Clip the activation ranges? (none/warning/all/pick) [warning]
send pick
expect Lines to accept (e.g. 1 3 or 1-2; Enter for none):
send 3
expect Please give numbers from 1 to 2, e.g. 1 3 or 1-2.
expect Lines to accept (e.g. 1 3 or 1-2; Enter for none):
send 2
expect Apply the recommended changes? [y/N]
send n
S
NO_COLOR=1 drive steps5c pick.alls
check "pick, then 3 (re-asked once with a hint), then 2 accepts only line 2 of the clipping group" \
  bash -c '[ '"$rc"' -eq 1 ] && [ $(grep -c "^Please give numbers" t.txt) -eq 1 ] &&
           grep -q "^pre_quantization_optimization(activation_clipping, layers=\[conv2\]" pick.alls &&
           ! grep -q "^pre_quantization_optimization(activation_clipping, layers=\[conv1\]" pick.alls &&
           ! grep -q "precision_mode=a16_w16" pick.alls && ! grep -q "compression_level" pick.alls &&
           grep -q "Accepted 1 of 2 recommended line(s)" t.txt'

# 5d. --accept none asks nothing and writes no script; --accept all accepts every line
rm -f diagnostic_tiny.alls
"$HQ_DIAG" --plugin-path "$good" --order TestFindings TestClipping -d "$calib" --accept none \
  quantized.har >t.txt 2>&1 || true
check "--accept none writes no model script" \
  bash -c '[ ! -e diagnostic_tiny.alls ] && grep -q "no model script written" t.txt &&
           grep -q "(non-interactive answer: none)" t.txt'
"$HQ_DIAG" --plugin-path "$good" --order TestFindings TestClipping -d "$calib" --accept all \
  --output-model-script all.alls quantized.har >t.txt 2>&1 || true
check "--accept all accepts every recommended line" \
  bash -c 'grep -q "layers=\[conv1\]" all.alls && grep -q "layers=\[conv2\]" all.alls &&
           grep -qx "model_optimization_flavor(compression_level=0)" all.alls &&
           grep -qx "quantization_param(conv1, precision_mode=a16_w16)" all.alls'
"$HQ_DIAG" --accept some quantized.har >t.txt 2>&1 && rc=0 || rc=$?
check "--accept with another word is refused" \
  bash -c '[ '"$rc"' -ne 0 ] && grep -q "takes all, none or defaults" t.txt'

# 6. the progress bar: on a terminal's stderr during the statistics pass, never when redirected
cat >steps6 <<'S'
expect Collecting statistics [
expect ] 16/16
expect Module: TestStats
expect Done:
S
set +e
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_pty.py" steps6 -- "$HQ_DIAG" --plugin-path "$good" \
  --order TestStats -d "$calib" --no-interactive quantized.har >transcript.txt 2>&1
rc=$?
set -e
tr -d '\r' <transcript.txt >t.txt
check "a progress bar is drawn on a terminal during the statistics pass" \
  bash -c '[ '"$rc"' -eq 0 ] && grep -q "Collecting statistics \[#\{30\}\] 16/16" t.txt'
"$HQ_DIAG" --plugin-path "$good" --order TestStats -d "$calib" --no-interactive quantized.har \
  >t.txt 2>err.txt <&- || true
check "  ... and not when stderr is not a terminal" \
  bash -c 'grep -q "^Module: TestStats" t.txt && ! grep -q "Collecting statistics" t.txt err.txt'

# 7. errors on stderr are coloured too when stderr is a terminal
printf 'expect is not quantized\n' >steps7
set +e
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/diag_pty.py" steps7 -- "$HQ_DIAG" --plugin-path "$good" \
  --order TestQuantized parsed.har >transcript.txt 2>&1
rc=$?
set -e
tr -d '\r' <transcript.txt >t.txt
check "\"[error] Model ... is not quantized\" on a terminal's stderr: coloured, exit 2" \
  bash -c '[ '"$rc"' -eq 2 ] && grep -q $'"'"'\033\[1;31m\[error\]\033\[0m Model parsed.har is not quantized'"'"' t.txt'
exit $fail
