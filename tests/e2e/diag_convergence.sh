#!/usr/bin/env bash
# hq-diag converges: its accepted lines, re-optimized with `hq optimize -m`, are not recommended
# again. spike_net (tests/fixtures/inspectors) on its 512 samples draws a manual-clipping warning
# that --no-interactive accepts (ClippingInspector alone: with HighPrecisionInspector the layer
# also turns 16-bit, and then no clip is worth offering); the written script re-quantizes the
# model, and a second run recommends no line the script already holds (numbers compared to 3 significant
# digits), and writes a script no longer than the first (one header line, one marker), with no
# two lines for one setting.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
quantize spike spike_net.onnx spike.alls spike_calib.npy
diag spike first --order ClippingInspector -c 512 -d "$work/spike_calib.npy" --output-model-script "$work/first.alls"
"$HQ" optimize "$work/spike_net.parsed.har" -d "$work/spike_calib.npy" -m "$work/first.alls" \
  -o "$work/again.har" >"$work/again.log" 2>&1 || { cat "$work/again.log"; exit 1; }
diag again second --order ClippingInspector -c 512 -d "$work/spike_calib.npy" --output-model-script "$work/second.alls"

/usr/bin/python3 - "$work" <<'PY' || failures=$((failures + 1))
import json, os, re, sys
work = sys.argv[1]

def canonical(line):
    """A script line with its numbers at 3 significant digits and no spaces."""
    line = re.sub(r"-?\d+(\.\d*)?([eE][-+]?\d+)?", lambda m: "%.3g" % float(m.group(0)), line)
    return line.replace(" ", "")

def commands(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]

first, second = commands(f"{work}/first.alls"), commands(f"{work}/second.alls")
accepted = [r for r in json.load(open(f"{work}/first.json"))["recommendations"] if r["accepted"]]
recs = json.load(open(f"{work}/second.json"))["recommendations"]
held = {canonical(l) for l in first}
problems = []
if not accepted:
    problems.append("the first run accepted no line: nothing to converge")
for r in recs:
    if canonical(r["line"]) in held:
        problems.append(f"recommended again: {r['line']} ({r['inspector']})")
if len(second) > len(first):
    problems.append(f"the second script has {len(second)} commands, the first {len(first)}")
lines = [len(open(f"{work}/{n}.alls").read().splitlines()) for n in ("first", "second")]
if lines[1] > lines[0]:
    problems.append(f"the second script has {lines[1]} lines, the first {lines[0]}")
if open(f"{work}/second.alls").read().count("written by hq-diag") != 1:
    problems.append("the second script repeats the first one's header line")
for name, lines in (("first", first), ("second", second)):
    seen = set()
    for l in lines:
        if canonical(l) in seen:
            problems.append(f"the {name} script holds {l} twice")
        seen.add(canonical(l))
print(f"{len(accepted)} line(s) accepted first; {len(recs)} recommended after re-optimizing; "
      f"scripts of {len(first)} and {len(second)} line(s)")
for p in problems:
    print("FAIL", p)
sys.exit(1 if problems else 0)
PY
expect "the second run logs the lines it did not repeat" \
  grep -q "not recommended again, the model script holds it" "$work/second/hq-diag.log"
finish
