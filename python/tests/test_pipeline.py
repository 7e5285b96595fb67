"""emulate, optimize, analyze_noise, profile, compile and Program.run on the sample, each
compared with the `hq` command on the same inputs: arrays and archives byte for byte, refusals
with the same message."""
import os
import unittest

import numpy as np

import helpers
import hq


def cli_error(proc, command):
    """The library's message in a CLI failure: stderr is 'hq COMMAND: MESSAGE'."""
    prefix = f"hq {command}: "
    assert proc.returncode == 2 and proc.stderr.startswith(prefix), proc.stderr
    return proc.stderr[len(prefix):].rstrip("\n")


class EmulateTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.har = hq.Archive.open(helpers.cli_parsed())
        cls.x = helpers.calib(20)
        np.save(helpers.work("x20.npy"), cls.x)

    def assert_same_arrays(self, got, want):
        self.assertEqual(list(got), list(want))
        for key in want:
            self.assertEqual(got[key].dtype, want[key].dtype, key)
            self.assertEqual(got[key].shape, want[key].shape, key)
            self.assertEqual(got[key].tobytes(), want[key].tobytes(), key)

    def test_native_with_taps_equals_hq_emulate(self):
        tap = self.har.layers[2]["bare_name"]
        got = self.har.emulate(self.x, taps=[tap], batch_size=3)
        helpers.hq_cli("emulate", helpers.cli_parsed(), "-d", helpers.work("x20.npy"), "-b", "3",
                       "--tap", tap, "-o", helpers.work("native.npz"))
        self.assert_same_arrays(got, helpers.load_npz(helpers.work("native.npz")))
        self.assertEqual(list(got)[0], self.har.outputs[0])

    def test_path_and_array_give_the_same_outputs(self):
        a = self.har.emulate(self.x, threads=1)
        b = self.har.emulate(helpers.work("x20.npy"), threads=2)
        self.assert_same_arrays(a, b)
        c = self.har.emulate({self.har.inputs[0]: self.x})
        self.assert_same_arrays(a, c)

    def test_nan_is_refused_with_the_cli_message(self):
        bad = self.x.copy()
        bad[3, 4, 5, 0] = np.nan
        path = helpers.work("nan.npy")
        np.save(path, bad)
        want = cli_error(helpers.hq_cli("emulate", helpers.cli_parsed(), "-d", path, check=False),
                         "emulate")
        with self.assertRaises(hq.InvalidError) as ctx:
            self.har.emulate(bad)
        self.assertEqual(str(ctx.exception), want.replace(path, "array"))
        self.assertIn("is NaN", str(ctx.exception))

    def test_wrong_shape_is_refused_with_the_cli_message(self):
        bad = np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        path = helpers.work("nchw.npy")
        np.save(path, bad)
        want = cli_error(helpers.hq_cli("emulate", helpers.cli_parsed(), "-d", path, check=False),
                         "emulate")
        with self.assertRaises(hq.InvalidError) as ctx:
            self.har.emulate(bad)
        self.assertEqual(str(ctx.exception), want.replace(path, "array"))

    def test_bad_arguments(self):
        with self.assertRaises(hq.NotFoundError):
            self.har.emulate(self.x, target="float")
        with self.assertRaises(hq.NotFoundError) as ctx:
            self.har.emulate(self.x, taps=["no_such_layer"])
        self.assertIn("no_such_layer", str(ctx.exception))
        with self.assertRaises(hq.ArgumentError):
            self.har.emulate(self.x, batch_size=0)
        with self.assertRaises(hq.NotFoundError) as ctx:
            self.har.emulate(self.x, target="quantized")  # not optimized yet
        with self.assertRaises(hq.NotFoundError) as ctx:
            self.har.emulate(helpers.work("no_such.npy"))
        self.assertIn("no_such.npy", str(ctx.exception))


class QuantizedTests(unittest.TestCase):
    """One `hq.optimize` of the sample, compared with `hq optimize`, then everything after it."""

    @classmethod
    def setUpClass(cls):
        parsed = hq.parse(helpers.ONNX)
        cls.parsed_bytes = parsed.save_bytes()
        cls.q = hq.optimize(parsed, helpers.CALIB, helpers.ALLS)
        cls.parsed = parsed
        cls.x = helpers.calib(12)
        np.save(helpers.work("x12.npy"), cls.x)

    def test_optimize_equals_hq_optimize_and_leaves_its_input(self):
        self.assertEqual(self.q.state, "quantized_model")
        self.assertEqual(self.q.save_bytes(), helpers.read_bytes(helpers.cli_quantized()))
        self.assertEqual(self.parsed.save_bytes(), self.parsed_bytes)
        self.assertEqual(self.parsed.state, "parsed_model")

    def test_optimize_from_arrays_and_script_text(self):
        with open(helpers.ALLS) as f:
            text = f.read()
        log = []
        q = hq.optimize(self.parsed, helpers.calib(), text.splitlines(), threads=1,
                        log=lambda level, message: log.append((level, message)))
        # the script name appears in no archive member: the same bytes as from the file
        self.assertEqual(q.save_bytes(), self.q.save_bytes())
        self.assertTrue(log)
        precisions = {l["precision_mode"] for l in q.layers if l["type"] != "input_layer"}
        self.assertIn("a8_w8", precisions)

    def test_level_is_a_script_line_that_overrides_the_scripts_own(self):
        with open(helpers.ALLS) as f:
            text = f.read()
        q = hq.optimize(self.parsed, helpers.CALIB, helpers.ALLS, level=0)
        same = hq.optimize(self.parsed, helpers.CALIB,
                           text + "model_optimization_flavor(optimization_level=0)\n")
        self.assertEqual(q.save_bytes(), same.save_bytes())
        self.assertTrue(q.script.rstrip().endswith(
            "model_optimization_flavor(optimization_level=0)"), q.script)
        for bad in (5, -1, 1.5, True, "2"):
            with self.assertRaises(hq.ArgumentError):
                hq.optimize(self.parsed, helpers.CALIB, helpers.ALLS, level=bad)

    def test_optimize_refuses_a_bad_script(self):
        line = "quantization_parm(conv1, precision_mode=a16_w16)\n"
        path = helpers.work("misspelled.alls")
        with open(path, "w") as f:
            f.write(line)
        proc = helpers.hq_cli("optimize", helpers.cli_parsed(), "-m", path, "-d", helpers.CALIB,
                              "-o", helpers.work("never.har"), check=False)
        want = cli_error(proc, "optimize")
        for script in (path, line, [line]):
            with self.assertRaises(hq.Error) as ctx:
                hq.optimize(self.parsed, helpers.CALIB, script)
            self.assertEqual(str(ctx.exception),
                             want if script is path else want.replace(path, "model script"))
        self.assertFalse(os.path.exists(helpers.work("never.har")))
        with self.assertRaises(hq.FormatError) as ctx:
            hq.optimize(self.parsed, helpers.CALIB, "quantization_param(\n")
        self.assertTrue(str(ctx.exception).startswith("model script:"), str(ctx.exception))
        with self.assertRaises(hq.NotFoundError):
            hq.optimize(self.parsed, helpers.CALIB, helpers.work("missing.alls"))

    def test_quantized_emulation_equals_hq_emulate(self):
        got = self.q.emulate(self.x, target="quantized")
        helpers.hq_cli("emulate", helpers.cli_quantized(), "-d", helpers.work("x12.npy"),
                       "--target", "quantized", "-o", helpers.work("quantized.npz"))
        want = helpers.load_npz(helpers.work("quantized.npz"))
        self.assertEqual(list(got), list(want))
        for key in want:
            self.assertEqual(got[key].tobytes(), want[key].tobytes())

    def test_layers_show_the_precision_hq_info_shows(self):
        text = helpers.hq_cli("info", helpers.cli_quantized()).stdout
        for layer in self.q.layers:
            row = next(line.split() for line in text.splitlines()
                       if line.startswith(layer["name"] + " "))
            self.assertEqual(row[-1], layer["precision_mode"] or "-")

    def test_analyze_noise_equals_hq_analyze_noise(self):
        for mode in ("simple", "advanced"):
            q = hq.Archive.open(helpers.cli_quantized())
            noise = q.analyze_noise(helpers.CALIB, mode=mode)
            out = helpers.work(f"noise_{mode}.har")
            helpers.hq_cli("analyze-noise", helpers.cli_quantized(), "-d", helpers.CALIB,
                           "--analyze-mode", mode, "-o", out)
            self.assertEqual(q.save_bytes(), helpers.read_bytes(out), mode)
            self.assertTrue(noise)
            for name, entry in noise.items():
                self.assertIsInstance(entry["snr"], float)
                self.assertEqual(entry["partial_snr"] is None, mode == "simple", name)
            params = q.params("quantized")
            some = next(iter(noise))
            self.assertEqual(np.float32(noise[some]["snr"]),
                             params[f"{some}/layer_noise_analysis/snr:0"].reshape(-1)[0])
        with self.assertRaises(hq.ArgumentError):
            q.analyze_noise(helpers.CALIB, mode="thorough")

    def test_profile_equals_hq_profile(self):
        weights = [l["bare_name"] for l in self.q.layers if l["type"] in ("conv", "dense")]
        for a16 in ([], weights[:2]):
            p = hq.profile(self.q, a16=a16)
            args = ["profile", helpers.cli_quantized(), "--all"]
            for name in a16:
                args += ["--a16", name]
            text = helpers.hq_cli(*args).stdout
            self.assertIn(f"estimated throughput: {p['fps']:.1f} FPS "
                          f"({p['seconds_per_frame'] * 1e3:.3f} ms per frame)", text)
            for layer in p["layers"]:
                self.assertIn(layer["name"], text)
                if layer["name"].rsplit("/", 1)[-1] in a16:
                    self.assertEqual(layer["precision"], "a16_w16")
        with self.assertRaises(hq.NotFoundError):
            hq.profile(self.q, a16=["no_such_layer"])

    def test_compile_and_run_equal_hq_compile_and_hq_run(self):
        program = hq.compile(self.q)
        self.assertEqual(self.q.state, "quantized_model")
        helpers.hq_cli("compile", helpers.cli_quantized(), "-o", helpers.work("cli.hqx"))
        self.assertEqual(program.bytes, helpers.read_bytes(helpers.work("cli.hqx")))
        got = program.run(self.x, codes=True)
        helpers.hq_cli("run", helpers.work("cli.hqx"), "-d", helpers.work("x12.npy"), "--codes",
                       "-o", helpers.work("run.npz"))
        want = helpers.load_npz(helpers.work("run.npz"))
        self.assertEqual(list(got), list(want))
        for key in want:
            self.assertEqual(got[key].dtype, want[key].dtype)
            self.assertEqual(got[key].tobytes(), want[key].tobytes(), key)
        # the runtime equals the quantized emulator, bit for bit
        emulated = self.q.emulate(self.x, target="quantized")
        for key, value in emulated.items():
            self.assertEqual(got[key].tobytes(), value.tobytes())
        path = helpers.work("py.hqx")
        program.save(path)
        again = hq.Program.open(path)
        self.assertEqual(again.inputs, program.inputs)
        self.assertEqual(again.run(self.x, threads=2)[key].tobytes(), got[key].tobytes())
        self.assertEqual(program.run(helpers.work("x12.npy"))[key].tobytes(), got[key].tobytes())
        bad = self.x.copy()
        bad[2, 1, 1, 1] = np.nan
        for name, array in (("nan", bad), ("short", np.ascontiguousarray(self.x[:, :5]))):
            path = helpers.work(f"run_{name}.npy")
            np.save(path, array)
            want = cli_error(helpers.hq_cli("run", helpers.work("cli.hqx"), "-d", path,
                                            check=False), "run")
            with self.assertRaises(hq.InvalidError) as ctx:
                program.run(array)
            self.assertEqual(str(ctx.exception), want.replace(path, "array"))

    def test_compile_refuses_a_parsed_archive(self):
        with self.assertRaises(hq.Error):
            hq.compile(self.parsed)

    def test_corrupt_program_is_refused(self):
        data = bytearray(hq.compile(self.q).bytes)
        data[len(data) // 2] ^= 0xFF
        with self.assertRaises(hq.FormatError):
            hq.Program(bytes(data))


if __name__ == "__main__":
    unittest.main()
