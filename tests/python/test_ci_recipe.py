"""The README's CI recipe, run exactly as written (the bash block between the
ci-recipe markers), against two SAEs this test writes: the gate passes
(exit 0, compare.json written with the gate's verdict) when B is a
permuted copy of A, fails with exit 1 when B is unrelated and below the
threshold, and exits 2 when the comparison itself is an error (another d_in)."""
import json
import os
import pathlib
import re
import subprocess

import numpy as np

from conftest import random_sae, write_saelens

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def recipe():
    text = README.read_text()
    m = re.search(r"<!-- ci-recipe:begin -->\s*```bash\n(.*?)```\s*<!-- ci-recipe:end -->", text,
                  re.S)
    assert m, "README.md has no ci-recipe block"
    return m.group(1)


def run_recipe(tmp_path, sae_a, sae_b, min_mmcs):
    env = dict(os.environ, SAE_ROOT=str(tmp_path / "saes"), SAE_A=sae_a, SAE_B=sae_b,
               MIN_MMCS=str(min_mmcs), SAEDICTD=os.environ["SAEDICT_SAEDICTD"],
               SAEDICT=os.environ["SAEDICT_CLI"])
    job = tmp_path / "job"
    job.mkdir(exist_ok=True)
    return subprocess.run(["bash", "-c", recipe()], cwd=job, env=env, capture_output=True,
                          text=True, timeout=240)


def write_pair(tmp_path):
    cfg, sae = random_sae(16, 48, seed=5)
    write_saelens(tmp_path / "saes" / "run_a", cfg, sae)
    perm = np.random.default_rng(1).permutation(48)
    permuted = {"W_enc": sae["W_enc"][:, perm], "b_enc": sae["b_enc"][perm],
                "W_dec": sae["W_dec"][perm], "b_dec": sae["b_dec"]}
    write_saelens(tmp_path / "saes" / "run_b", cfg, permuted)


def test_recipe_passes_on_a_permuted_copy(tmp_path):
    write_pair(tmp_path)
    out = run_recipe(tmp_path, "run_a", "run_b", 0.9)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "job" / "compare.json").read_text())
    assert report["gate"] == {"metric": "mmcs", "fail_below": 0.9,
                              "value": report["summary"]["mean_max_a_to_b"], "passed": True}
    assert abs(report["summary"]["mean_max_a_to_b"] - 1) < 1e-9
    assert abs(report["summary"]["assignment_mean"] - 1) < 1e-9
    assert len(report["matches_a"]) == 48 and len(report["matches_b"]) == 48
    assert "PASS" in out.stdout


def test_recipe_fails_the_job_below_the_threshold(tmp_path):
    write_pair(tmp_path)
    cfg, other = random_sae(16, 48, seed=99)  # unrelated weights: MMCS well below 0.9
    write_saelens(tmp_path / "saes" / "run_c", cfg, other)
    out = run_recipe(tmp_path, "run_a", "run_c", 0.9)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL: mmcs" in out.stderr
    report = json.loads((tmp_path / "job" / "compare.json").read_text())
    assert report["gate"]["passed"] is False
    assert report["gate"]["value"] < 0.9


def test_recipe_exits_2_when_the_comparison_is_an_error(tmp_path):
    write_pair(tmp_path)
    cfg, wide = random_sae(24, 48, seed=7)  # another d_in: the decoder method refuses
    write_saelens(tmp_path / "saes" / "run_d", cfg, wide)
    out = run_recipe(tmp_path, "run_a", "run_d", 0.5)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "activation method" in out.stderr
