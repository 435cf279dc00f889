"""Reuse of finished jobs: answered from the record only when every ingredient is the same."""
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from inbol_utils import confidence, protocol
from inbol_utils.runner import profiling, reuse
from inbol_utils.runner.parameters import PROJECT_ROOT
from worlds import small_config


def test_a_job_is_reused_only_with_the_same_recipe_and_its_output_present(tmp_path):
    out, calls = tmp_path / "model", []

    def make():
        calls.append(1)
        out.mkdir(exist_ok=True)
        return {"run": len(calls)}

    assert reuse.reuse(out, "a", make) == {"run": 1}
    assert reuse.reuse(out, "a", make) == {"run": 1} and len(calls) == 1  # answered from the record
    assert reuse.reuse(out, "b", make) == {"run": 2}  # another recipe: made again
    shutil.rmtree(reuse.entry("b"))  # the store emptied: made again
    assert reuse.reuse(out, "b", make) == {"run": 3}
    assert reuse.recipe_of(out) == "b"


def test_a_job_lives_once_in_the_store_and_every_folder_links_to_it(tmp_path):
    """A copy of a params file with its own artifacts folder reuses every job another folder
    ran (issue 35): its outputs are links to the one stored copy, nothing is copied."""
    calls = []

    def make(home):
        calls.append(home)
        (home / "model").mkdir(parents=True)
        (home / "model" / "weights.bin").write_bytes(b"w")
        (home / "beside.json").write_text("{}")  # a second output of the same job
        return "trained"

    first, second = tmp_path / "default" / "seed0", tmp_path / "mine" / "seed0"
    assert reuse.reuse(first / "model", "r", lambda: make(first), also=["beside.json"]) == "trained"
    assert reuse.reuse(second / "model", "r", lambda: make(second), also=["beside.json"]) == "trained"
    assert calls == [first]
    for home in (first, second):
        assert (home / "model").is_symlink() and (home / "beside.json").is_symlink()
        assert (home / "model").resolve() == reuse.entry("r") / "model"
        assert reuse.recipe_of(home / "model") == reuse.recipe_of(home / "beside.json") == "r"
    assert (first / "model" / "weights.bin").stat().st_ino == (second / "model" / "weights.bin").stat().st_ino
    # made again under another recipe: the link is replaced, the stored job is never written through
    reuse.reuse(first / "model", "r2", lambda: make(first), also=["beside.json"])
    assert (second / "model").resolve() == reuse.entry("r") / "model" and reuse.recipe_of(second / "model") == "r"
    assert reuse.recipe_of(first / "model") == "r2"


def test_the_store_is_where_inbol_jobs_says(tmp_path, monkeypatch):
    monkeypatch.setenv("INBOL_JOBS", str(tmp_path / "elsewhere"))
    (tmp_path / "a").mkdir()
    reuse.reuse(tmp_path / "a" / "out.txt", "r", lambda: (tmp_path / "a" / "out.txt").write_text("x"))
    assert (tmp_path / "elsewhere" / "r" / "out.txt").read_text() == "x"
    monkeypatch.setenv("INBOL_JOBS", "data/jobs")  # relative: from the project's root, like artifacts
    assert reuse.store() == PROJECT_ROOT / "data" / "jobs"


def test_links_to_an_emptied_store_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("INBOL_JOBS", str(tmp_path / "store"))
    out = tmp_path / "artifacts" / "seed0" / "model"
    reuse.reuse(out, "r", lambda: out.mkdir(parents=True))
    assert reuse.missing(tmp_path / "artifacts") == []
    shutil.rmtree(tmp_path / "store")
    assert reuse.missing(tmp_path / "artifacts") == [out]
    assert reuse.recipe_of(out).startswith("unrecorded-")


def test_a_reused_job_counts_the_work_it_took_as_reused(tmp_path):
    """Chapter 6 prices the whole study from the profile's counts, so a rerun that answers jobs
    from their records must still count their work: apart, as reused, with what each job's own
    jobs took (a pair set built around a reused model still took that model's training)."""
    inner, outer = tmp_path / "model", tmp_path / "pairs"

    def train():
        with profiling.part("training"):
            profiling.count_tokens(300, rows=10)
        inner.mkdir(exist_ok=True)

    def build_pairs():
        reuse.reuse(inner, "model", train)
        with profiling.part("sampling"):
            profiling.count_tokens(50, rows=5)
        outer.mkdir(exist_ok=True)

    profiling.take()
    reuse.reuse(inner, "model", train)  # the model alone first: the pairs then reuse it
    reuse.reuse(outer, "pairs", build_pairs)
    done = profiling.take()
    assert done["tokens"] == {"training": 300, "training (rows)": 10, "sampling": 50, "sampling (rows)": 5}
    assert done["reused tokens"] == {"training": 300, "training (rows)": 10}  # inside the pairs' job
    reuse.reuse(outer, "pairs", build_pairs)  # a rerun: nothing done, all of the pairs' work reused
    again = profiling.take()
    assert again["tokens"] == {} and sum(again["seconds"].values()) == 0
    assert again["reused tokens"] == done["tokens"]
    assert again["reused seconds"].keys() == {"training", "sampling"}


def test_an_interrupted_job_leaves_nothing_in_the_store(tmp_path):
    out = tmp_path / "model"
    reuse.reuse(out, "a", lambda: out.mkdir() or "finished")

    def crash():
        out.mkdir()  # half written, then stopped
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reuse.reuse(out, "b", crash)
    assert not reuse.entry("b").exists() and not out.is_symlink()
    assert reuse.reuse(out, "b", lambda: out.mkdir(exist_ok=True) or "made again") == "made again"
    assert reuse.reuse(out, "a", lambda: "not called") == "finished"  # the finished job stays stored


def test_recipes_follow_ingredients_code_and_unrecorded_inputs(tmp_path, monkeypatch):
    assert reuse.recipe(lr=1e-4, seed=0) == reuse.recipe(seed=0, lr=1e-4)
    assert reuse.recipe(lr=1e-4) != reuse.recipe(lr=2e-4)
    before = reuse.recipe(lr=1e-4)
    monkeypatch.setattr(reuse, "code_digest", lambda leave_out=(): "edited code")
    assert reuse.recipe(lr=1e-4) != before
    edited = reuse.recipe(lr=1e-4)
    upgraded = {**reuse.numerics(), "libraries": {"torch": "another"}}
    monkeypatch.setattr(reuse, "numerics", lambda: upgraded)
    assert reuse.recipe(lr=1e-4) != edited  # an upgraded library: its jobs train again
    # an input written without a record never lets anything made from it be reused
    assert reuse.recipe_of(tmp_path / "by hand") != reuse.recipe_of(tmp_path / "by hand")


def test_other_float_kernels_train_again():
    """Chapter 4's rerun with torch's generic kernels (ATEN_CPU_CAPABILITY=default) shares the job
    store: its recipes must differ, or it would answer every job from this machine's kernels and
    show a reproduction that never ran. The same setup in another process reuses."""
    if reuse.numerics()["float_kernels"] == "DEFAULT":
        pytest.skip("this CPU already runs torch's generic kernels")
    assert recipe_in_a_process() == reuse.recipe(lr=1e-4)
    assert recipe_in_a_process(ATEN_CPU_CAPABILITY="default") != reuse.recipe(lr=1e-4)


def test_capped_onednn_kernels_train_again():
    """oneDNN's instruction set, capped by a setting torch does not report, also moves the floats
    (with ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 makes an AVX-512 machine round as an
    AVX2 one): keyed apart, and named."""
    if any(os.environ.get(name) for name in reuse.KERNEL_CAPS):
        pytest.skip("this shell already caps the kernels")
    recipe, kernels = in_a_process("reuse.recipe(lr=1e-4)", "reuse.float_kernels()", ONEDNN_MAX_CPU_ISA="AVX2")
    assert recipe != reuse.recipe(lr=1e-4)
    assert kernels == f"{reuse.float_kernels()} (ONEDNN_MAX_CPU_ISA=AVX2)"


def in_a_process(*expressions: str, **env: str) -> list[str]:
    """What `expressions` (of `reuse`) print, one line each, in a fresh process with `env` added."""
    code = "from inbol_utils.runner import reuse\n" + "".join(f"print({e})\n" for e in expressions)
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=True,
                          capture_output=True, text=True).stdout.splitlines()


def recipe_in_a_process(**env: str) -> str:
    """A job's recipe as a fresh process with `env` added computes it."""
    return in_a_process("reuse.recipe(lr=1e-4)", **env)[0]


def test_editing_the_prose_retrains_nothing_but_reruns_the_notebooks(tmp_path, monkeypatch):
    """A job's recipe leaves out the modules that only present results; a stage's stamp does not."""
    assert all((reuse.PACKAGE_DIR / name).exists() for name in reuse.PRESENTATION)  # no stale name
    package = tmp_path / "inbol_utils"
    shutil.copytree(reuse.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(reuse, "PACKAGE_DIR", package)
    job, stage = reuse.recipe(lr=1e-4), reuse.code_digest()
    prose = package / "book" / "prose.py"
    prose.write_text(prose.read_text() + "\nNEW_PHRASE = 'a new phrase'\n")
    assert reuse.recipe(lr=1e-4) == job and reuse.code_digest() != stage
    record, stage = package / "book" / "try_it.json", reuse.code_digest()
    record.write_text('{"mfu": {"seconds": 68.0}}\n')  # a new "Try it" measurement, which the chapters glue
    assert reuse.recipe(lr=1e-4) == job and reuse.code_digest() != stage
    (package / "runner" / "environment.py").write_text((package / "runner" / "environment.py").read_text() + "\nTHREADS = 2\n")
    assert reuse.recipe(lr=1e-4) != job  # the runner's pins are part of every result
    (package / "dpo.py").write_text((package / "dpo.py").read_text() + "\nNEW_LOSS = 'a new loss'\n")
    assert reuse.recipe(lr=1e-4) != job


def test_comments_layout_and_docstrings_are_not_code(tmp_path, monkeypatch):
    """A recipe hashes what runs: rewording a comment or a docstring, or rewrapping a line,
    must not make anyone retrain the study; a changed constant, a string one included, must."""
    package = tmp_path / "inbol_utils"
    package.mkdir()
    monkeypatch.setattr(reuse, "PACKAGE_DIR", package)
    module = package / "dpo.py"

    def digest_of(source: str) -> str:
        module.write_text(source)
        return reuse.code_digest()

    original = digest_of('"""The loss."""\n\ndef loss(x):\n    """Why."""\n    return max(x, 0.1)  # beta\n')
    assert digest_of('"""The loss, reworded."""\n# a comment\n\ndef loss(x):\n  """Why, again."""\n'
                     '  return max(x,\n             0.1)  # beta, explained\n') == original
    assert digest_of('def loss(x):\n    return max(x, 0.1)\n') == original  # docstrings gone
    assert digest_of('def loss(x):\n    """Why."""\n    return max(x, 0.5)\n') != original
    assert digest_of('def loss(x):\n    return "max(x, 0.1)"\n') != original
    labelled = digest_of('def loss(x):\n    """Why."""\n    x.name = "beta 0.1"\n    return x * 0.1\n')
    assert digest_of('def loss(x):\n    """Why."""\n    x.name = "beta 0.5"\n    return x * 0.1\n') != labelled


# A module whose code the digest must read the same on every Python version: tokenize splits an
# f-string into parts from 3.12 on, and ast.dump changes with each version.
MODULE = '''"""Doc."""
import os  # why

def f(x):  # hi
    """Doc of f."""
    s = "# not a comment"
    return f"{x}#{s!r:>{w}}"   


class A:
    "doc"
    y = 1
'''
MODULE_CODE = ["import", "os", "NEWLINE", "def", "f", "(", "x", ")", ":", "NEWLINE", "INDENT", "s", "=",
               '"# not a comment"', "NEWLINE", "return", 'f"{x}#{s!r:>{w}}"', "NEWLINE", "DEDENT", "class", "A", ":",
               "NEWLINE", "INDENT", "y", "=", "1", "NEWLINE", "DEDENT"]


def test_the_code_of_a_module_is_the_same_on_every_python():
    assert reuse._code_of(MODULE.encode()).decode().split("\n") == MODULE_CODE


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13", "3.14"])
def test_the_digest_is_the_same_on_another_installed_python(version):
    """The digest of the whole package, by another interpreter where one is installed (reuse
    needs only the standard library); skipped where none is."""
    python = shutil.which(f"python{version}")
    if version == f"{sys.version_info.major}.{sys.version_info.minor}" or python is None \
            or subprocess.run([python, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip(f"no other python{version} here")
    root = reuse.PACKAGE_DIR.parent
    other = subprocess.run([python, "-c", "from inbol_utils.runner import reuse; print(reuse.code_digest())"],
                           cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    assert other == reuse.code_digest()


def test_the_probe_is_reused_after_a_tau_change_and_redone_after_an_n_change(tmp_path, trained_tiny,
                                                                            monkeypatch):
    """Notebook 01 reruns when tau changes, but the probe does not depend on tau."""
    _, model_path = trained_tiny
    protocol.build_world(tmp_path, 0, small_config(seed=3, n_probe=16))
    home = protocol.seed_dir(tmp_path, 0)
    shutil.copytree(model_path, home / "base_model")
    reuse.keep(home, ["base_model"], "tiny base model")
    job = dict(artifacts=str(tmp_path), seed=0, n_samples=2, n_values=[1, 2], temperature=1.0, batch_size=8)
    profiling.take()
    first = protocol.probe_seed(**job)
    done = profiling.take()
    probes = []
    monkeypatch.setattr(confidence, "probe", lambda *a, **k: probes.append(1) or first)
    pd.testing.assert_frame_equal(protocol.probe_seed(**job), first)
    assert probes == []
    reused = profiling.take()  # nothing probed again, and the probe's work counted as reused
    assert reused["tokens"] == {} and reused["reused tokens"] == done["tokens"] != {}
    protocol.probe_seed(**{**job, "n_values": [1, 3], "n_samples": 3})
    assert probes == [1]


def test_the_same_job_finished_twice_keeps_the_first_and_links_both(tmp_path):
    """Identical jobs can run side by side (a real source gives every seed the same world): the
    one that finishes second finds the entry in place, drops its own copy and links to it."""
    first, second = tmp_path / "seed0", tmp_path / "seed1"
    for home, text in ((first, "one"), (second, "two")):
        home.mkdir()
        (home / "world.txt").write_text(text)
    reuse.keep(first, ["world.txt"], "w", result="first")
    reuse.keep(second, ["world.txt"], "w", result="second")
    assert (first / "world.txt").read_text() == (second / "world.txt").read_text() == "one"
    assert sorted(p.name for p in reuse.store().iterdir()) == ["w"]  # no leftover copy beside it
