"""har_fixture.py — archives in hq's HAR layout for the e2e fixture generators beside it
(make_shuffle_har.py, make_layer_norm_har.py, diag_fixtures.py, diag_headline_fixtures.py): a
USTAR tar of NET.metadata.json, NET.hn, NET.npz and whatever else the state adds. Imported, not
run (Python finds it next to the script that imports it)."""
import io
import json
import tarfile

import numpy as np


def npz_bytes(arrays):
    """The .npz of `arrays` (name -> array), as np.savez writes it."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def parsed_members(net, hn, params):
    """The members of a parsed archive of network `net`: its metadata (state parsed_model,
    hailo8), its .hn (a dict) and its params (name -> array, stored as given)."""
    metadata = {"state": "parsed_model", "hn": f"{net}.hn", "hw_arch": "hailo8",
                "hq_version": "0.1.0"}
    return {f"{net}.metadata.json": json.dumps(metadata, indent=2).encode(),
            f"{net}.hn": json.dumps(hn, indent=2).encode(),
            f"{net}.npz": npz_bytes(params)}


def write_har(path, members):
    """Writes `members` (name -> bytes, in the dict's order) to `path` as a USTAR tar, each
    member mode 0644."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    with open(path, "wb") as f:
        f.write(data.getvalue())
