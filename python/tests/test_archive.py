"""hq.parse, hq.Archive: open, save, info, layers, script; byte-identical with `hq parse`."""
import re
import unittest

import helpers
import hq


class ArchiveTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.har = hq.parse(helpers.ONNX)

    def test_parse_saves_the_bytes_hq_parse_writes(self):
        self.assertEqual(self.har.save_bytes(), helpers.read_bytes(helpers.cli_parsed()))
        path = helpers.work("py_parsed.har")
        self.har.save(path)
        self.assertEqual(helpers.read_bytes(path), helpers.read_bytes(helpers.cli_parsed()))

    def test_parse_options_reach_the_library(self):
        har = hq.parse(helpers.ONNX, net_name="digits", hw_arch="hailo15h")
        self.assertEqual(har.net_name, "digits")
        self.assertEqual(har.hw_arch, "hailo15h")
        self.assertTrue(all(l["name"].startswith("digits/") for l in har.layers))
        helpers.hq_cli("parse", helpers.ONNX, "--net-name", "digits", "--hw-arch", "hailo15h",
                       "-o", helpers.work("cli_digits.har"))
        self.assertEqual(har.save_bytes(), helpers.read_bytes(helpers.work("cli_digits.har")))

    def test_info_agrees_with_hq_info(self):
        info = self.har.info
        self.assertEqual(info["state"], "parsed_model")
        self.assertEqual(info["hw_arch"], "hailo8")
        self.assertEqual(info["net_name"], "sample")
        self.assertEqual(info["params"], ["native"])
        text = helpers.hq_cli("info", helpers.cli_parsed()).stdout
        rows = [line.split() for line in text.splitlines()
                if line.startswith(info["net_name"] + "/")]
        self.assertEqual([r[0] for r in rows], [l["name"] for l in info["layers"]])
        self.assertEqual([r[1] for r in rows], [l["type"] for l in info["layers"]])
        for row, layer in zip(rows, info["layers"]):
            out = "(" + ",".join(str(d) for d in layer["output_shapes"][0]) + ")"
            self.assertIn(out, row)
            self.assertEqual(layer["precision_mode"], "")
        self.assertIn(f"inputs:    {' '.join(info['inputs'])}", text)
        self.assertIn(f"outputs:   {' '.join(info['outputs'])}", text)

    def test_open_save_round_trip(self):
        path = helpers.work("round.har")
        self.har.save(path)
        again = hq.Archive.open(path)
        self.assertEqual(again.path, path)
        self.assertEqual(again.save_bytes(), self.har.save_bytes())
        self.assertEqual(again.layers, self.har.layers)

    def test_script_is_settable(self):
        har = hq.Archive.open(helpers.cli_parsed())
        self.assertEqual(har.script, "")
        har.script = "# a comment\nnormalization1 = normalization([1, 2, 3], [4, 5, 6])\n"
        self.assertIn("normalization1 = normalization([1, 2, 3], [4, 5, 6])", har.script)
        path = helpers.work("scripted.har")
        har.save(path)
        self.assertEqual(hq.Archive.open(path).script, har.script)
        with self.assertRaises(hq.FormatError) as ctx:
            har.script = "broken(("
        self.assertTrue(str(ctx.exception).startswith("model script:1:"), str(ctx.exception))

    def test_params_come_out_as_numpy(self):
        params = self.har.params("native")
        kernels = [k for k in params if k.endswith("/kernel:0")]
        self.assertTrue(kernels)
        self.assertEqual(params[kernels[0]].ndim, 4)
        with self.assertRaises(hq.NotFoundError):
            self.har.params("quantized")

    def test_tensor_shapes_and_cuts(self):
        first = self.har.layers[1]["name"]
        with self.assertRaises(hq.Error):
            hq.parse(helpers.ONNX, end_nodes=["no_such_node"])
        har = hq.parse(helpers.ONNX, tensor_shapes=[(1,) + tuple(
            self.har.layers[0]["output_shapes"][0][d] for d in (3, 1, 2))])
        self.assertEqual(har.layers[1]["name"], first)
        self.assertTrue(re.match(r"sample/", first))


if __name__ == "__main__":
    unittest.main()
