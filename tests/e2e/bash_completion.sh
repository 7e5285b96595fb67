#!/usr/bin/env bash
# The bash completion (core/cli/hq.bash-completion, installed as share/bash-completion/completions/hq and
# hq-diag) registers both programs and completes hq's subcommands, each subcommand's flags, the
# values of --target, hq-diag's flags and the inspector names --order takes -- all read from the
# programs' own --help and --list-inspectors.
set -euo pipefail
fail=0
# shellcheck source=/dev/null
source "$HQ_SOURCE_DIR/core/cli/hq.bash-completion"
complete -p hq | grep -q -- '-F _hq hq$' || { echo "FAIL complete -p hq: $(complete -p hq)"; fail=1; }
complete -p hq-diag | grep -q -- '-F _hq_diag hq-diag$' || { echo "FAIL complete -p hq-diag"; fail=1; }

# expect <function> "<expected words, sorted, space-separated>" <words of the line...>: completes
# the last word
expect() {
  local function=$1 want=$2; shift 2
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  "$function"
  local got
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | xargs)
  if [ "$got" != "$want" ]; then
    echo "FAIL '${*:2}': got '$got', expected '$want'"; fail=1
  else
    echo "ok   '${*:2}' -> $got"
  fi
}
expect _hq "run" "$HQ" ru
expect _hq "compare compile" "$HQ" com
expect _hq "analyze-noise" "$HQ" an
expect _hq "--help --version" "$HQ" --
expect _hq "--dataset" "$HQ" run m.hqx --da
expect _hq "--a16 --all" "$HQ" profile --a
expect _hq "--codes" "$HQ" run --co
expect _hq "fp_optimized" "$HQ" emulate m.har --target f
expect _hq "" "$HQ" run m.hqx -d ""  # a file name: left to readline
expect _hq_diag "--output-model-script" "$HQ_DIAG" --output-m
expect _hq_diag "--json" "$HQ_DIAG" -d x.npy --js
expect _hq_diag "BatchNormInspector" "$HQ_DIAG" --order Ba
expect _hq_diag "CalibrationSetInspector ClippingInspector CompressionInspector ConcatenatedOutputsInspector" "$HQ_DIAG" --order NormInspector C
expect _hq_diag "NormInspector,ImageInspector" "$HQ_DIAG" --order NormInspector,Im
expect _hq_diag "" "$HQ_DIAG" -d x
[ $fail -eq 0 ] && echo "bash completion works for hq and hq-diag"
exit $fail
