"""hq.diag against `hq-diag --no-interactive` on the quantized sample (its seeded normalization
mistake), the accept policies, and hq.compare against `hq compare`."""
import json
import os
import subprocess
import unittest

import numpy as np

import hq
import helpers

HQ_DIAG = os.environ.get("HQ_DIAG", os.path.join(os.path.dirname(helpers.HQ), "hq-diag"))


def hq_diag_cli(*args):
    folder = helpers.work("cli_diag")
    os.makedirs(folder, exist_ok=True)
    proc = subprocess.run([HQ_DIAG, *args, "--no-interactive", "--log-path",
                           os.path.join(folder, "hq-diag.log")], cwd=folder, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    if proc.returncode not in (0, 1):
        raise AssertionError(f"hq-diag {' '.join(args)} failed: {proc.stderr}")
    return proc


class DiagTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = helpers.cli_quantized()  # the sample optimized with its mistaken script
        cls.json_path, cls.script_path = helpers.work("cli_diag.json"), helpers.work("cli.alls")
        hq_diag_cli(cls.model, "-d", helpers.CALIB, "--json", cls.json_path,
                    "--output-model-script", cls.script_path)
        with open(cls.json_path) as f:
            cls.cli_json_text = f.read()
        cls.cli_json = json.loads(cls.cli_json_text)
        # inspectors name the folder they write to in findings: the same folder as the CLI's
        # (the files folder of its log, cli_diag/hq-diag.log)
        cls.report = hq.diag(cls.model, helpers.CALIB,
                             output_dir=os.path.join(helpers.work("cli_diag"), "hq-diag_files"))
        cls.out = helpers.work("py_diag")
        os.makedirs(cls.out, exist_ok=True)

    def test_findings_equal_the_cli_json_and_name_the_normalization_mistake(self):
        got = [(f.inspector, f.level, f.layer, f.message, f.numbers) for f in self.report.findings]
        want = [(d["inspector"], d["level"], d["layer"], d["message"], d["numbers"])
                for d in self.cli_json["diagnostics"]]
        self.assertEqual(got, want)
        norm = [f for f in self.report.findings if f.inspector == "NormInspector"]
        self.assertTrue(any(f.level == "error" for f in norm), norm)
        self.assertEqual(self.report.exit_status, 1)

    def test_json_and_script_equal_the_cli_byte_for_byte(self):
        self.assertEqual(self.report.to_json(), self.cli_json_text)
        self.assertEqual(self.report.script().encode(), helpers.read_bytes(self.script_path))
        self.assertIn("normalization", self.report.script())

    def test_recommendations_verdict_and_headline(self):
        recs = self.report.recommendations
        self.assertEqual([(r.line, r.inspector, r.level, r.accepted) for r in recs],
                         [(r["line"], r["inspector"], r["level"], r["accepted"])
                          for r in self.cli_json["recommendations"]])
        self.assertTrue(any(r.accepted and "normalization" in r.line for r in recs))
        self.assertEqual(self.report.verdict, self.cli_json["verdict"])
        self.assertEqual(self.report.triage, self.cli_json["triage"])
        self.assertEqual(self.report.triage[0]["rank"], 1)
        self.assertEqual(self.report.triage[0]["inspector"], "NormInspector")
        self.assertTrue(self.report.output_sqnr)
        for name, o in self.report.output_sqnr.items():
            self.assertIn("quantized_vs_fp_optimized_db", o)
        self.assertIn("<table>", self.report._repr_html_())
        self.assertIn("NormInspector", self.report._repr_html_())
        html_path = helpers.work("py_diag/report.html")
        self.report.to_html(html_path)
        with open(html_path) as f:
            self.assertIn("hq-diag report", f.read())

    def test_accept_none_accepts_nothing(self):
        report = hq.diag(self.model, helpers.CALIB, accept="none", output_dir=self.out)
        self.assertTrue(report.recommendations)
        self.assertFalse(any(r.accepted for r in report.recommendations))
        self.assertNotIn("added by hq-diag", report.script())
        self.assertNotIn("replaced", report.script())
        self.assertEqual(report.data["summary"]["accepted"], 0)

    def test_accept_all_accepts_every_line(self):
        report = hq.diag(self.model, helpers.CALIB, accept="all", output_dir=self.out)
        self.assertTrue(all(r.accepted for r in report.recommendations))

    def test_a_callable_sees_each_line_and_decides(self):
        seen = []

        def only_normalization(rec):
            seen.append(rec)
            return "normalization" in rec.line

        report = hq.diag(self.model, helpers.CALIB, accept=only_normalization,
                         output_dir=self.out)
        self.assertEqual([(r.line, r.inspector, r.level) for r in seen],
                         [(r.line, r.inspector, r.level) for r in report.recommendations])
        for r in report.recommendations:
            if "normalization" not in r.line:
                self.assertFalse(r.accepted, r.line)
        self.assertTrue(any(r.accepted for r in report.recommendations))
        report = hq.diag(self.model, helpers.CALIB, accept=lambda r: "clipping" in r.line,
                         output_dir=self.out)
        self.assertTrue(report.recommendations)
        for r in report.recommendations:
            self.assertEqual(r.accepted, "clipping" in r.line, r.line)

    def test_an_exception_in_the_callable_is_raised_after_the_run(self):
        def boom(rec):
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            hq.diag(self.model, helpers.CALIB, accept=boom, output_dir=self.out)

    def test_archive_object_and_array_give_the_same_findings(self):
        report = hq.diag(hq.Archive.open(self.model), helpers.calib(), order=["norm"],
                         output_dir=self.out)
        want = [(f.inspector, f.level, f.message) for f in self.report.findings
                if f.inspector in ("NormInspector", "hq-diag")]
        self.assertEqual([(f.inspector, f.level, f.message) for f in report.findings], want)

    def test_verify_and_reference_equal_the_cli(self):
        held = np.load(os.path.join(helpers.SOURCE, "samples", "sample_eval.npz"))["images"]
        held = held[:16].astype(np.float32)
        held_path = helpers.work("held.npy")
        np.save(held_path, held)
        ref_path = helpers.work("reference.npz")
        helpers.hq_cli("emulate", self.model, "-d", helpers.CALIB, "-o", ref_path, "-q")
        cli_json = helpers.work("cli_verify.json")
        hq_diag_cli(self.model, "-d", helpers.CALIB, "--accept", "all", "--verify",
                    "--verify-from", helpers.cli_parsed(), "--verify-data", held_path,
                    "--reference", ref_path, "--json", cli_json,
                    "--log-path", helpers.work("cli_verify.log"))
        with open(cli_json) as f:
            cli = json.load(f)
        reference = dict(np.load(ref_path))
        report = hq.diag(self.model, helpers.CALIB, accept="all", verify=True, verify_data=held,
                         verify_from=helpers.cli_parsed(), reference=reference)
        self.assertEqual(report.verify["before_db"], cli["verify"]["before_db"])
        self.assertEqual([r["after_db"] for r in report.verify["runs"]],
                         [r["after_db"] for r in cli["verify"]["runs"]])
        self.assertTrue(report.verify["reproduced"])
        self.assertEqual(report.output_sqnr, {o["output"]: {k: v for k, v in o.items()
                                                            if k != "output"}
                                              for o in cli["output_sqnr_db"]})
        self.assertEqual(report.output_sqnr["output_layer1"]["native_vs_reference_db"], 200)
        self.assertIsNone(self.report.verify)

    def test_bad_arguments(self):
        with self.assertRaises(hq.NotFoundError) as ctx:
            hq.diag(self.model, helpers.CALIB, order="no_such_inspector")
        self.assertIn("no_such_inspector", str(ctx.exception))
        with self.assertRaises(hq.ArgumentError):
            hq.diag(self.model, helpers.CALIB, accept="yes")
        with self.assertRaises(hq.Error):
            hq.diag(helpers.work("missing.har"), helpers.CALIB)


def parse_compare(stdout):
    """{key: (sqnr, cosine, max_abs, argmax)} as `hq compare` printed them."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5 or "below" in line:
            continue
        rows[parts[0]] = parts[-4:]
    return rows


class CompareTests(unittest.TestCase):
    def test_compare_equals_hq_compare(self):
        x = helpers.work("x16.npy")
        np.save(x, helpers.calib(16))
        ref, other = helpers.work("cmp_fpo.npz"), helpers.work("cmp_q.npz")
        helpers.hq_cli("emulate", helpers.cli_quantized(), "-d", x, "--target", "fp_optimized",
                       "-o", ref)
        helpers.hq_cli("emulate", helpers.cli_quantized(), "-d", x, "--target", "quantized",
                       "-o", other)
        proc = helpers.hq_cli("compare", ref, other, "--min-sqnr", "100", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        want = parse_compare(proc.stdout)
        got = hq.compare(ref, other, min_sqnr=100)
        self.assertEqual(list(got), list(want))
        for key, c in got.items():
            argmax = "-" if c["argmax"] is None else f"{100.0 * c['argmax']:.2f}%"
            self.assertEqual([f"{c['sqnr_db']:.2f}", f"{c['cosine']:.6f}", f"{c['max_abs']:.6g}",
                              argmax], want[key])
            self.assertTrue(c["below_min_sqnr"])
        arrays = hq.compare(helpers.load_npz(ref), helpers.load_npz(other))
        self.assertEqual({k: v["sqnr_db"] for k, v in arrays.items()},
                         {k: v["sqnr_db"] for k, v in got.items()})

    def test_compare_edge_cases(self):
        a = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
        same = hq.compare(a, a)["array"]
        self.assertEqual((same["sqnr_db"], same["cosine"], same["max_abs"], same["argmax"]),
                         (float("inf"), 1.0, 0.0, 1.0))
        with self.assertRaises(hq.InvalidError):
            hq.compare(a, a.T)
        with self.assertRaises(hq.InvalidError):
            hq.compare(a, np.array([[1.0, np.nan, 3.0]], dtype=np.float32))
        with self.assertRaises(hq.NotFoundError):
            hq.compare({"x": a, "y": a}, {"z": a, "w": a})


if __name__ == "__main__":
    unittest.main()
