#!/usr/bin/env bash
# `hq run --stats` and `hq emulate --target quantized --stats` print one time line per op kind
# (layer type) the model has, whose shares add up to 100%, then a total; the slowest ops follow
# for `hq run`. The outputs written with --stats are the same bytes as without, at 1 and 2 threads.
set -euo pipefail
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# conv, pad, concat, feature_splitter, slice and output layers: six op kinds
"$HQ" parse "$HQ_SOURCE_DIR/tests/fixtures/onnx/patterns/concat_split_slice_pad.onnx" \
  -o "$tmp/m.har" >/dev/null
"$py" -c "import numpy as np; np.save('$tmp/d.npy', np.random.RandomState(3).randn(5,6,7,3).astype(np.float32))"
"$HQ" optimize "$tmp/m.har" -d "$tmp/d.npy" -o "$tmp/q.har" >/dev/null
"$HQ" compile "$tmp/q.har" -o "$tmp/m.hqx" >/dev/null
samples=5

# check_times <stats file> <expected kinds, sorted, space-separated> <what> <runs per op>
# (hq run: one per op and sample; hq emulate: one per layer and batch)
check_times() {
  local kinds
  kinds=$(awk '$1 == "stats:" && $2 == "time" && $3 != "total" {print $3}' "$1" | sort | xargs)
  [ "$kinds" = "$2" ] || { echo "$3: kinds '$kinds', expected '$2'"; fail=1; }
  local dups
  dups=$(awk '$1 == "stats:" && $2 == "time" {print $3}' "$1" | sort | uniq -d)
  [ -z "$dups" ] || { echo "$3: kinds printed twice: $dups"; fail=1; }
  grep -qE '^stats: time total +[0-9.]+ ms$' "$1" || { echo "$3: no total line"; fail=1; }
  # shares are rounded to 0.1 each: their sum is 100 within half a tenth per line
  awk -v what="$3" '$1 == "stats:" && $2 == "time" && $3 != "total" {
      s = $6; sub("%", "", s); sum += s; n++ }
    END { if (sum < 100 - 0.05 * n - 0.01 || sum > 100 + 0.05 * n + 0.01) {
            printf "%s: shares add up to %.1f%%\n", what, sum; exit 1 } }' "$1" || fail=1
  awk -v what="$3" -v n="$4" '$1 == "stats:" && $2 == "time" && $3 != "total" {
      r = $7; sub("\\(", "", r); r += 0; if (r % n != 0 || r < n) { print what ": " $3 " ran " r " times"; bad = 1 } }
    END { exit bad }' "$1" || fail=1
}

for j in 1 2; do
  "$HQ" run "$tmp/m.hqx" -d "$tmp/d.npy" -j $j -o "$tmp/plain$j.npz" >"$tmp/plain$j.txt"
  "$HQ" run "$tmp/m.hqx" -d "$tmp/d.npy" -j $j -o "$tmp/stats$j.npz" --stats >"$tmp/stats$j.txt"
  cmp "$tmp/plain$j.npz" "$tmp/stats$j.npz" || { echo "hq run -j $j: --stats changed the output"; fail=1; }
  [ ! -s "$tmp/plain$j.txt" ] || { echo "hq run -j $j -o: printed without --stats:"; cat "$tmp/plain$j.txt"; fail=1; }
  check_times "$tmp/stats$j.txt" "concat conv copy pad slice split" "hq run -j $j --stats" $samples
  ops=$(grep -c '^stats: op ' "$tmp/stats$j.txt" || true)
  [ "$ops" -ge 1 ] && [ "$ops" -le 10 ] || { echo "hq run -j $j --stats: $ops op lines"; fail=1; }
  grep -qE '^stats: op concat_split_slice_pad/conv[12] \(conv\) [0-9.]+ ms [0-9.]+% \(5 op runs\)$' \
    "$tmp/stats$j.txt" || { echo "hq run -j $j --stats: no line for a conv op:"; cat "$tmp/stats$j.txt"; fail=1; }
  # the slowest ops come largest first
  awk '$2 == "op" { t = $5; if (seen && t > last + 0) bad = 1; last = t; seen = 1 } END { exit bad }' \
    "$tmp/stats$j.txt" || { echo "hq run -j $j --stats: ops not sorted"; cat "$tmp/stats$j.txt"; fail=1; }
done
cmp "$tmp/plain1.npz" "$tmp/plain2.npz" || { echo "hq run: -j 2 changed the output"; fail=1; }
# without -o the summary is printed as before, the stats lines after it
"$HQ" run "$tmp/m.hqx" -d "$tmp/d.npy" >"$tmp/summary.txt"
"$HQ" run "$tmp/m.hqx" -d "$tmp/d.npy" --stats >"$tmp/summary_stats.txt"
diff <(grep -v '^ran ' "$tmp/summary.txt") <(grep -v '^ran \|^stats: ' "$tmp/summary_stats.txt") ||
  { echo "hq run --stats changed the summary"; fail=1; }
! grep -q '^stats:' "$tmp/summary.txt" || { echo "hq run printed stats unasked"; fail=1; }

for j in 1 2; do
  "$HQ" emulate "$tmp/q.har" -d "$tmp/d.npy" --target quantized -j $j -o "$tmp/eplain$j.npz" >/dev/null
  "$HQ" emulate "$tmp/q.har" -d "$tmp/d.npy" --target quantized -j $j -o "$tmp/estats$j.npz" \
    --stats >"$tmp/estats$j.txt"
  cmp "$tmp/eplain$j.npz" "$tmp/estats$j.npz" || { echo "hq emulate -j $j: --stats changed the output"; fail=1; }
  check_times "$tmp/estats$j.txt" "concat conv feature_splitter output_layer pad slice" \
    "hq emulate --target quantized -j $j --stats" 1
done

[ $fail -eq 0 ] && echo "run and quantized emulate stats: one line per op kind, shares add to 100%, outputs unchanged"
exit $fail
