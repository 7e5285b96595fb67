"""The walkthrough of docs/python.md runs as written."""
import contextlib
import io
import os
import re
import unittest

import helpers


class WalkthroughTests(unittest.TestCase):
    def test_walkthrough_runs(self):
        with open(os.path.join(helpers.SOURCE, "docs", "python.md")) as f:
            code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
        folder = helpers.work("walkthrough")
        os.makedirs(folder, exist_ok=True)
        os.symlink(os.path.join(helpers.SOURCE, "samples"), os.path.join(folder, "samples"))
        old = os.getcwd()
        out = io.StringIO()
        try:
            os.chdir(folder)
            with contextlib.redirect_stdout(out):
                exec(compile(code, "docs/python.md", "exec"), {})
        finally:
            os.chdir(old)
        self.assertIn("argmax agreement", out.getvalue())
        self.assertTrue(os.path.exists(os.path.join(folder, "sample_a16.har")))


if __name__ == "__main__":
    unittest.main()
