#!/usr/bin/env bash
# hq-diag --verify measures its own advice. On the bundled sample quantized with its seeded
# normalization mistake (samples/sample.alls), --verify --accept all re-quantizes in memory from
# the parsed archive (the script changed the graph, so the quantized one cannot be taken back)
# and reports a positive measured gain for NormInspector's line, the seeded cause; every figure
# equals what a separate `hq optimize -m <merged script>` + `hq emulate` / `hq compare` gives on
# the same held-out samples (within 0.01 dB); the archive's own script re-quantized reproduces the
# archive (and calibration data other than the archive's is called out); the user's files are
# untouched; a run that cannot verify says which flag to give, exits 2 and writes nothing.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
samples="$HQ_SOURCE_DIR/samples"
calib="$samples/sample_calib.npy"
cd "$work"
"$HQ" parse "$samples/sample.onnx" -o sample.har >/dev/null
"$HQ" optimize sample.har -m "$samples/sample.alls" -d "$calib" -o sample_q.har >/dev/null
# held-out: 48 images of the held-out set; and a 96-sample dataset whose last 32 are held out
/usr/bin/python3 - "$samples" <<'PY'
import sys
import numpy as np
images = np.load(sys.argv[1] + "/sample_eval.npz")["images"].astype(np.float32)
np.save("held.npy", images[:48])
np.save("tail.npy", images[48:80])
np.save("calib_and_tail.npy", np.concatenate([np.load(sys.argv[1] + "/sample_calib.npy"),
                                              images[48:80]]))
PY

fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
refused() { # description, expected text, then the hq-diag arguments
  local what=$1 text=$2; shift 2
  mkdir -p refused && rm -rf refused/*
  set +e
  (cd refused && "$HQ_DIAG" --accept all --json out.json "$@" >out.txt 2>err.txt </dev/null)
  local rc=$?
  set -e
  check "$what: exit 2" [ $rc -eq 2 ]
  check "$what: one line naming the flag" \
    bash -c '[ "$(wc -l <refused/err.txt)" -eq 1 ] && grep -q -- "'"$text"'" refused/err.txt'
  check "$what: nothing written" \
    bash -c '[ "$(ls refused | sort | tr "\n" " ")" = "err.txt out.txt " ] && [ ! -s refused/out.txt ]'
}

refused "a quantized archive whose script changed the graph" "--verify-from PARSED.har" \
  -d "$calib" --verify --verify-data ../held.npy ../sample_q.har
refused "no held-out samples" "--verify-data HELD_OUT" \
  -d "$calib" --verify --verify-from ../sample.har ../sample_q.har
refused "--verify-from a quantized archive" "parsed archive" \
  -d "$calib" --verify --verify-from ../sample_q.har --verify-data ../held.npy ../sample_q.har
refused "--verify without a dataset" "-d DATASET" \
  --verify --verify-from ../sample.har --verify-data ../held.npy ../sample_q.har
refused "--verify-data without --verify" "add --verify" \
  -d "$calib" --verify-data ../held.npy ../sample_q.har

sums_before=$(md5sum sample.har sample_q.har)
set +e
"$HQ_DIAG" --accept all -d "$calib" --verify --verify-from sample.har --verify-data held.npy \
  -j 2 --json out.json --report out.html --output-model-script merged.alls sample_q.har \
  >out.txt 2>err.txt </dev/null
rc=$?
set -e
check "the verified run exits 1 (the seeded errors)" [ $rc -eq 1 ]
check "the report has the verification table" \
  bash -c 'grep -q "<h3 id=\"verify\">Verified fixes</h3>" out.html &&
           grep -q "<td>1. NormInspector</td><td><code>normalization1 = normalization(" out.html'
check "the user's archives are untouched" [ "$(md5sum sample.har sample_q.har)" = "$sums_before" ]
check "the console shows the verification table" \
  bash -c 'grep -q "^Verification: output SQNR" out.txt &&
           grep -Eq "^  all accepted +3 +[0-9.]+ -> [0-9.-]+ +[-+][0-9.]+ dB" out.txt &&
           grep -Eq "^  1\. NormInspector +1 +[0-9.]+ -> [0-9.]+ +\+[0-9.]+ dB" out.txt'

# NormInspector's line alone, merged as hq-diag merges it, for the independent figure
"$HQ_DIAG" --accept all -d "$calib" --order NormInspector --output-model-script norm.alls \
  --log-path norm.log sample_q.har >/dev/null 2>&1 </dev/null || true
for name in all norm; do
  script=$([ $name = all ] && echo merged.alls || echo norm.alls)
  "$HQ" optimize sample.har -m "$script" -d "$calib" -o "$name.har" >/dev/null
done
for name in sample_q all norm; do
  "$HQ" emulate "$name.har" -d held.npy --target fp_optimized -o "$name.fpo.npz" -q
  "$HQ" emulate "$name.har" -d held.npy --target quantized -o "$name.q.npz" -q
  "$HQ" compare "$name.fpo.npz" --against "$name.har" -d held.npy --target quantized \
    >"$name.compare.txt"
done
check "--json: the figures equal hq optimize + hq emulate / hq compare on the held-out samples" \
  /usr/bin/python3 - <<'PY'
import json
import numpy as np
d = json.load(open("out.json"))
assert d["schema"] == 4, d["schema"]
v = d["verify"]
assert v["held_out"] == {"data": "held.npy", "first": 0, "samples": 48}, v["held_out"]
assert v["from"] == "sample.har" and v["measure"] == "quantized_vs_fp_optimized", v

def sqnr(name):
    f, q = np.load(name + ".fpo.npz"), np.load(name + ".q.npz")
    out = []
    for key in f.files:
        a, b = f[key].astype(np.float64), q[key].astype(np.float64)
        out.append(10 * np.log10((a * a).sum() / ((b - a) ** 2).sum()))
    return out

def printed(name):
    rows = [l.split() for l in open(name + ".compare.txt") if l.startswith("sample/")]
    return [float(r[-4]) for r in rows]

def close(a, b, what):
    assert len(a) == len(b) and all(abs(x - y) < 0.01 for x, y in zip(a, b)), (what, a, b)

close(v["before_db"], sqnr("sample_q"), "before")
# the archive's own script, re-quantized from the parsed archive, reproduces the archive exactly
assert v["reproduced"] is True and v["baseline_db"] == v["before_db"], v
close(v["before_db"], printed("sample_q"), "before, hq compare")
runs = {r["inspector"] or "all": r for r in v["runs"]}
assert runs["all"]["group"] == "all" and len(runs["all"]["lines"]) == 3, runs["all"]
close(runs["all"]["after_db"], sqnr("all"), "all")
close(runs["all"]["after_db"], printed("all"), "all, hq compare")
norm = runs["NormInspector"]
assert norm["rank"] == 1 and len(norm["lines"]) == 1 and "normalization(" in norm["lines"][0], norm
close(norm["after_db"], sqnr("norm"), "NormInspector")
close(norm["after_db"], printed("norm"), "NormInspector, hq compare")
assert norm["gain_db"] > 0, norm
for r in v["runs"]:
    assert abs(r["gain_db"] - (min(r["after_db"]) - min(v["before_db"]))) < 1e-9, r
t = {e["inspector"]: e for e in d["triage"]}
assert t["NormInspector"]["measured_gain_db"] == norm["gain_db"], t["NormInspector"]
assert d["triage"][0]["inspector"] == "NormInspector", d["triage"][0]
for e in d["triage"]:
    lines = [l for l in e["lines"] if l["accepted"]]
    if not lines:
        assert e["measured_gain_db"] is None, e
PY

# without --verify-data: the dataset's samples after calibset_size (64) are held out, and give the
# same figures as those samples named with --verify-data
"$HQ_DIAG" --accept all -d calib_and_tail.npy -c 32 --verify --verify-from sample.har \
  --json tail_default.json --log-path a.log sample_q.har >/dev/null 2>&1 </dev/null || true
"$HQ_DIAG" --accept all -d calib_and_tail.npy -c 32 --verify --verify-from sample.har \
  --verify-data tail.npy --json tail_named.json --log-path b.log sample_q.har >/dev/null 2>&1 \
  </dev/null || true
check "held-out by default: the samples after calibset_size, the same figures" \
  /usr/bin/python3 - <<'PY'
import json
a, b = json.load(open("tail_default.json"))["verify"], json.load(open("tail_named.json"))["verify"]
assert a["held_out"] == {"data": "calib_and_tail.npy", "first": 64, "samples": 32}, a["held_out"]
assert b["held_out"]["samples"] == 32, b["held_out"]
assert a["before_db"] == b["before_db"], (a["before_db"], b["before_db"])
assert [r["after_db"] for r in a["runs"]] == [r["after_db"] for r in b["runs"]], (a, b)
PY
# an archive whose script changed nothing in the graph is taken back to its float model itself
# (no --verify-from): the archive's script re-quantized reproduces it, and every accepted line
# gives what hq optimize of the parsed archive with the written script gives
"$HQ" optimize sample.har -d "$calib" -o plain_q.har >/dev/null
"$HQ_DIAG" --accept all -d "$calib" --verify --verify-data held.npy --json plain.json \
  --output-model-script plain.alls --log-path d.log plain_q.har >plain.txt 2>&1 </dev/null || true
"$HQ" optimize sample.har -m plain.alls -d "$calib" -o plain_all.har >/dev/null
"$HQ" emulate plain_all.har -d held.npy --target fp_optimized -o plain_all.fpo.npz -q
"$HQ" emulate plain_all.har -d held.npy --target quantized -o plain_all.q.npz -q
check "the quantized archive itself as the float model: reproduced, the same figures" \
  /usr/bin/python3 - <<'PY'
import json
import numpy as np
v = json.load(open("plain.json"))["verify"]
assert v["from"] == "plain_q.har" and v["reproduced"] is True, v
assert v["baseline_db"] == v["before_db"], v
f, q = np.load("plain_all.fpo.npz"), np.load("plain_all.q.npz")
a, b = [x[f.files[0]].astype(np.float64) for x in (f, q)]
want = 10 * np.log10((a * a).sum() / ((b - a) ** 2).sum())
got = [r for r in v["runs"] if r["group"] == "all"][0]["after_db"][0]
assert abs(got - want) < 0.01, (got, want)
PY

# nothing accepted: nothing re-quantized, said in one line, null figures
"$HQ_DIAG" --accept none -d "$calib" --verify --verify-from sample.har --verify-data held.npy \
  --json none.json --log-path e.log sample_q.har >none.txt 2>&1 </dev/null || true
check "nothing accepted: one line, null figures, no run" \
  bash -c 'grep -qx "Verification: no line accepted, nothing to re-quantize" none.txt &&
           /usr/bin/python3 -c "import json; v = json.load(open(\"none.json\"))[\"verify\"]; assert v[\"runs\"] == [] and v[\"before_db\"] is None and v[\"reproduced\"] is None, v"'

# calibration data other than the archive's: the re-quantized baseline differs, and the table
# says so before the gains
"$HQ_DIAG" --accept all -d held.npy --verify --verify-from sample.har --verify-data tail.npy \
  --json other.json --log-path c.log sample_q.har >other.txt 2>&1 </dev/null || true
check "other calibration data: the table warns that the archive is not reproduced" \
  bash -c 'grep -q "^  the archive.s script alone, re-quantized, gives [0-9.]* dB where the archive gives [0-9.]* (lowest output): the archive was quantized with other calibration data" other.txt &&
           /usr/bin/python3 -c "import json; v = json.load(open(\"other.json\"))[\"verify\"]; assert v[\"reproduced\"] is False and abs(v[\"baseline_db\"][0] - v[\"before_db\"][0]) > 0.01, v"'
exit $fail
