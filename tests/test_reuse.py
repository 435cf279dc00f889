"""Reuse of finished jobs: answered from the record only when every ingredient is the same."""
import shutil

import pandas as pd
import pytest

from inbol_utils import confidence, protocol, reuse, world


def test_a_job_is_reused_only_with_the_same_recipe_and_its_output_present(tmp_path):
    out, calls = tmp_path / "model", []

    def make():
        calls.append(1)
        out.mkdir(exist_ok=True)
        return {"run": len(calls)}

    assert reuse.reuse(out, "a", make) == {"run": 1}
    assert reuse.reuse(out, "a", make) == {"run": 1} and len(calls) == 1  # answered from the record
    assert reuse.reuse(out, "b", make) == {"run": 2}  # another recipe: made again
    shutil.rmtree(out)
    assert reuse.reuse(out, "b", make) == {"run": 3}  # output gone: made again
    assert reuse.recipe_of(out) == "b"


def test_an_interrupted_job_leaves_no_record(tmp_path):
    out = tmp_path / "model"
    reuse.reuse(out, "a", lambda: out.mkdir())

    def crash():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reuse.reuse(out, "b", crash)
    assert reuse.reuse(out, "a", lambda: "made again") == "made again"  # the old record is gone too


def test_recipes_follow_ingredients_code_and_unrecorded_inputs(tmp_path, monkeypatch):
    assert reuse.recipe(lr=1e-4, seed=0) == reuse.recipe(seed=0, lr=1e-4)
    assert reuse.recipe(lr=1e-4) != reuse.recipe(lr=2e-4)
    before = reuse.recipe(lr=1e-4)
    monkeypatch.setattr(reuse, "code_digest", lambda leave_out=(): "edited code")
    assert reuse.recipe(lr=1e-4) != before
    # an input written without a record never lets anything made from it be reused
    assert reuse.recipe_of(tmp_path / "by hand") != reuse.recipe_of(tmp_path / "by hand")


def test_editing_the_prose_retrains_nothing_but_reruns_the_notebooks(tmp_path, monkeypatch):
    """A job's recipe leaves out the modules that only present results; a stage's stamp does not."""
    assert set(reuse.PRESENTATION) <= {p.name for p in reuse.PACKAGE_DIR.glob("*.py")}  # no stale name
    package = tmp_path / "inbol_utils"
    shutil.copytree(reuse.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(reuse, "PACKAGE_DIR", package)
    job, stage = reuse.recipe(lr=1e-4), reuse.code_digest()
    (package / "book.py").write_text((package / "book.py").read_text() + "\n# a new phrase\n")
    assert reuse.recipe(lr=1e-4) == job and reuse.code_digest() != stage
    (package / "dpo.py").write_text((package / "dpo.py").read_text() + "\n# a new loss\n")
    assert reuse.recipe(lr=1e-4) != job


def test_the_probe_is_reused_after_a_tau_change_and_redone_after_an_n_change(tmp_path, trained_tiny,
                                                                            monkeypatch):
    """Notebook 01 reruns when tau changes, but the probe does not depend on tau."""
    _, model_path = trained_tiny
    protocol.build_world(tmp_path, world.small_config(seed=3, n_probe=16))
    home = protocol.seed_dir(tmp_path, 0)
    home.mkdir()
    shutil.copytree(model_path, home / "base_model")
    reuse.mark(home / "base_model", "tiny base model")
    job = dict(artifacts=str(tmp_path), seed=0, n_samples=2, n_values=[1, 2], temperature=1.0, batch_size=8)
    first = protocol.probe_seed(**job)
    probes = []
    monkeypatch.setattr(confidence, "probe", lambda *a, **k: probes.append(1) or first)
    pd.testing.assert_frame_equal(protocol.probe_seed(**job), first)
    assert probes == []
    protocol.probe_seed(**{**job, "n_values": [1, 3], "n_samples": 3})
    assert probes == [1]
