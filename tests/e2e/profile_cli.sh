#!/usr/bin/env bash
# `hq profile` prints the total line before the table, sorts the layers by share of the frame
# (largest first), leaves out layers without MACs or weights (const_input, output_layer, concat)
# but counts them in one line, and lists every layer with --all; the shares add up to 100%.
set -euo pipefail
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
"$HQ" parse "$HQ_SOURCE_DIR/tests/fixtures/onnx/patterns/constant_operands_with_batch_one.onnx" \
  -o "$work/m.har" >/dev/null
"$HQ" profile "$work/m.har" >"$work/default.txt"
"$HQ" profile "$work/m.har" --all >"$work/all.txt"
"$HQ" profile --help | grep -q -- "--all" || { echo "FAIL --help does not mention --all"; fail=1; }

"$py" - "$work/default.txt" "$work/all.txt" <<'EOF' || fail=1
import re, sys

def table(path):
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("layer "))
    rows, hidden = [], None
    for l in lines[start + 1:]:
        if not l.strip():
            break
        m = re.match(r"\((\d+) layer\(s\) without MACs or weights not listed: ([\d.]+)% of the frame", l)
        if m:
            hidden = (int(m.group(1)), float(m.group(2)))
            continue
        f = l.split()
        rows.append((f[0], f[1], int(f[3]), int(f[4]), float(f[-1].rstrip("%"))))
    return lines, start, rows, hidden

ok = True
def check(cond, what):
    global ok
    if not cond:
        print("FAIL", what)
        ok = False

lines, start, rows, hidden = table(sys.argv[1])
total = [i for i, l in enumerate(lines) if l.startswith("total: ")]
check(total and total[0] < start, "the total line does not come before the table")
check(total and "7 layer(s)" in lines[total[0]] and "FPS" in lines[total[0]],
      "the total line lacks the layer count or the FPS")
check([r[4] for r in rows] == sorted((r[4] for r in rows), reverse=True), "rows are not sorted by share")
check(all(r[2] or r[3] for r in rows), "a layer without MACs or weights is listed")
check(not any(r[1] in ("const_input", "output_layer", "concat") for r in rows), "const_input/output/concat rows listed")
check(hidden is not None and hidden[0] == 5, f"hidden-layers line wrong: {hidden}")
check(hidden and abs(sum(r[4] for r in rows) + hidden[1] - 100) < 0.5, "listed and hidden shares do not add to 100%")

lines, start, all_rows, hidden = table(sys.argv[2])
check(len(all_rows) == 7 and hidden is None, f"--all lists {len(all_rows)} rows (hidden {hidden}), expected 7")
check(sum(r[1] == "const_input" for r in all_rows) == 2, "--all does not list the const_input layers")
check([r[4] for r in all_rows] == sorted((r[4] for r in all_rows), reverse=True), "--all rows are not sorted")
check(abs(sum(r[4] for r in all_rows) - 100) < 0.5, "--all shares do not add to 100%")
sys.exit(0 if ok else 1)
EOF
[ $fail -eq 0 ] && echo "hq profile: total first, sorted by share, empty layers summed unless --all"
exit $fail
