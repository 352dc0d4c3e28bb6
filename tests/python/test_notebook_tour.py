"""client/python/examples/notebook_tour.py runs as a script against a
saedictd with the demo dictionary and corpus, with the saedict package this
suite tests (the pip-installed copy under run_installed.py)."""
import os
import pathlib
import subprocess
import sys

from conftest import Server

TOUR = pathlib.Path(__file__).resolve().parents[2] / "client/python/examples/notebook_tour.py"


def test_notebook_tour_runs(tmp_path):
    server = Server(tmp_path, demo_corpus=True)
    try:
        proc = subprocess.run([sys.executable, str(TOUR)], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path,
                              env={**os.environ, "SAEDICT_TARGET": server.target})
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for line in ("dictionary demo: d_in 64, d_sae 512, k 16",
                 "encoded 256 rows: 4096 nonzeros (16.0 per row)",
                 "decode matches the reconstruction: True",
                 "float16 / bfloat16 inputs: 4096 / 4096 nonzeros",
                 "rows 1-3 unchanged: True, feature now 0.0",
                 "feature 0: active on ",
                 "NotFound: dictionary 'no-such-dictionary' not found",
                 "InvalidArgument: activations",
                 "tour done"):
        assert line in out, out
    assert out.count("[[") >= 5  # the top examples with their peak marked
