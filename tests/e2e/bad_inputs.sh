#!/usr/bin/env bash
# The bad-input catalogue: each malformed archive or dataset makes `hq info` / `hq-diag` exit 2
# with exactly one line on stderr naming the file and the problem, print nothing on stdout, and
# write no file. Under the sanitizer build the same run checks for leaks and memory errors.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$HQ_SOURCE_DIR/tests/e2e/make_bad_inputs.py" "$work" >"$work/cases.tsv"
fail=0
count=0
while IFS=$'\t' read -r tool file words; do
  count=$((count + 1))
  before=$(ls "$work" | sort)
  if [ "$tool" = info ]; then
    set +e; "$HQ" info "$work/$file" >"$work/.out" 2>"$work/.err"; rc=$?; set -e
  else
    set +e; "$HQ_DIAG" -d "$work/$file" "$HQ_SOURCE_DIR/samples/tiny.har" >"$work/.out" 2>"$work/.err"; rc=$?; set -e
  fi
  lines=$(wc -l <"$work/.err")
  msg=$(cat "$work/.err")
  after=$(ls "$work" | sort)
  problem=""
  [ $rc -eq 2 ] || problem="exit status $rc, expected 2"
  [ -z "$problem" ] && [ "$lines" -ne 1 ] && problem="$lines lines on stderr, expected 1"
  [ -z "$problem" ] && [ -s "$work/.out" ] && problem="printed on stdout: $(head -c 200 "$work/.out")"
  [ -z "$problem" ] && ! grep -qF -- "$file" <<<"$msg" && problem="message does not name the file"
  [ -z "$problem" ] && ! grep -qiF -- "$words" <<<"$msg" && problem="message lacks '$words'"
  [ -z "$problem" ] && [ "$before" != "$after" ] && problem="files were written"
  if [ -n "$problem" ]; then
    echo "FAIL $tool $file: $problem"; echo "     stderr: $msg"; fail=$((fail + 1))
  else
    echo "ok   $tool $file: $msg"
  fi
done <"$work/cases.tsv"
echo "$count bad inputs, $fail mishandled"
[ $fail -eq 0 ]
