"""hq.Error and its subclasses carry the library's one-line message naming the file."""
import os
import unittest

import helpers
import hq


class ErrorTests(unittest.TestCase):
    def test_missing_archive_names_the_file(self):
        path = helpers.work("no_such.har")
        with self.assertRaises(hq.Error) as ctx:
            hq.Archive.open(path)
        self.assertIn(path, str(ctx.exception))
        self.assertIsInstance(ctx.exception, hq.Error)
        self.assertEqual(ctx.exception.status, type(ctx.exception).status)

    def test_missing_onnx_names_the_file(self):
        path = helpers.work("no_such.onnx")
        with self.assertRaises(hq.Error) as ctx:
            hq.parse(path)
        self.assertIn(path, str(ctx.exception))

    def test_garbage_archive_is_a_format_error_with_the_cli_message(self):
        path = helpers.work("garbage.har")
        with open(path, "wb") as f:
            f.write(b"this is not a tar archive" * 40)
        with self.assertRaises(hq.Error) as ctx:
            hq.Archive.open(path)
        proc = helpers.hq_cli("info", path, check=False)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stderr, f"hq info: {ctx.exception}\n")
        self.assertIsInstance(ctx.exception, hq.FormatError)

    def test_bad_hw_arch_is_an_argument_error(self):
        with self.assertRaises(hq.ArgumentError):
            hq.parse(helpers.ONNX, hw_arch="no_such_chip")

    def test_every_status_has_its_class(self):
        from hq import errors
        for status, cls in [(-1, hq.IoError), (-2, hq.FormatError), (-3, hq.UnsupportedError),
                            (-4, hq.NoMemoryError), (-5, hq.ArgumentError),
                            (-6, hq.NotFoundError), (-7, hq.LimitError), (-8, hq.InvalidError),
                            (-9, hq.StateError)]:
            e = errors.from_status(status, "m")
            self.assertIs(type(e), cls)
            self.assertEqual(str(e), "m")
            self.assertEqual(e.status, status)
        self.assertIs(type(errors.from_status(-99, "m")), hq.Error)

    def test_library_is_the_one_asked_for(self):
        if os.environ.get("HQ_LIBRARY"):
            self.assertEqual(hq.library_path, os.environ["HQ_LIBRARY"])


if __name__ == "__main__":
    unittest.main()
