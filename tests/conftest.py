"""Shared fixtures: a tiny world and a tiny untrained LLaVA, built once per session.

Nothing heavy is imported at the top: under pytest-xdist the controller loads this file before
it starts the workers, and importing torch and transformers here cost 8 s of the suite's length.
"""
import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs one worker per core) each worker keeps to one thread;
    the controller runs no test and needs no torch."""
    worker = hasattr(config, "workerinput")
    if config.getoption("numprocesses", None) and not worker:
        return
    import torch

    torch.set_num_threads(1 if worker else max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_finish(session):
    """Every test module is imported: freeze what the imports made. Every Trainer.train() starts
    with a full garbage collection, which would otherwise walk all of torch and transformers
    again (about 0.6 s of a core per training run)."""
    import gc

    gc.freeze()


# The fixtures' LLaVA: small enough to build and train in seconds.
TINY_SIZE = dict(vision_width=32, vision_layers=1, text_width=32, text_layers=2)

# The suite's long pole: the smoke run of the whole pipeline, mostly notebook kernels starting.
LONG_POLE = "test_smoke_pipeline_reproduces_its_results_and_builds_the_book"


def pytest_addoption(parser):
    parser.addoption("--exercise", metavar="NAME=FILE", default=None,
                     help="run only exercise NAME's tests, with the function NAME from FILE in place of the "
                          "package's (python -m inbol_utils.tools.exercises runs this)")


def pytest_collection_modifyitems(config, items):
    """The long pole first, the other slow tests last. pytest-xdist hands each worker a
    contiguous share of this order and an idle worker steals from the end of another's: one
    worker starts the smoke run at once, the other runs the unit tests and then the slow rest,
    and stealing evens them out. With every slow test first, all of them queued at the front of
    one worker, where nothing steals: 235 s in a row, the suite's whole length."""
    items.sort(key=lambda item: 0 if item.originalname == LONG_POLE else
               2 if item.get_closest_marker("slow") else 1)
    if config.getoption("--exercise"):
        name = config.getoption("--exercise").split("=")[0]
        chosen = [item for item in items if (m := item.get_closest_marker("exercise")) and m.args[0] == name]
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen


@pytest.fixture(scope="session")
def implementation(request):
    """`implementation(f)`: the package's function `f`, or with `--exercise NAME=FILE` for
    f's name, the function of that name in FILE (an exercise's answer, book/exercises/)."""
    option = request.config.getoption("--exercise")
    name, _, path = option.partition("=") if option else ("", "", "")

    def pick(function):
        if function.__name__ != name:
            return function
        spec = importlib.util.spec_from_file_location(f"answer_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)

    return pick


@pytest.fixture(autouse=True)
def job_store(tmp_path_factory, monkeypatch):
    """Each test's own job store (`inbol_utils.runner.reuse`), never the user's data/jobs; the
    runners and kernels a test starts inherit it."""
    monkeypatch.setenv("INBOL_JOBS", str(tmp_path_factory.mktemp("jobs")))


@pytest.fixture(scope="session")
def tiny_world():
    from inbol_utils import world
    from worlds import small_config

    return world.build_world(small_config(seed=3))


@pytest.fixture(scope="session")
def processor():
    from inbol_utils import answers, modeling, world

    return modeling.build_processor(world.world_words() | answers.refusal_words(),
                                    modeling.ModelSize())


@pytest.fixture(scope="session")
def tiny_model(processor):
    from inbol_utils import modeling

    size = modeling.ModelSize(**TINY_SIZE)
    return modeling.build_model(processor, size, seed=0).eval()


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, tiny_world, processor, worker_id):
    """A tiny model trained for seconds: it answers with a word or two of the right kind, then stops,
    so answer probabilities are far from 0 and 1. Saved in the hub format. Trained once per run:
    under pytest-xdist the first worker that needs it trains it, and the others load it (training
    costs each about 15 s of a core)."""
    from filelock import FileLock  # huggingface_hub's own dependency

    from inbol_utils import modeling, training

    # Every xdist worker's base folder sits in the run's; without xdist the parent is shared by runs.
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    path = shared / "trained_tiny" / "model"
    with FileLock(shared / "trained_tiny.lock"):
        if not (path / "config.json").is_file():
            model = modeling.build_model(processor, modeling.ModelSize(**TINY_SIZE), seed=0)
            rows = tiny_world[0]["base_train"].map(lambda r: {"response": r["answers"][0]})
            args = training.training_arguments(str(path) + ".run", 200, 32, 3e-3, 0, disable_tqdm=True)
            training.train_sft(model, processor, rows, args)
            modeling.save(model, processor, path)
    model, _ = modeling.load(path)
    return model, path


@pytest.fixture
def ten_queries():
    """10 scored queries (a frame): 4 inside, 3 beyond-intrinsic, 3 beyond-extrinsic (no gold answer)."""
    import pandas as pd

    rows = [
        ("inside", "correct"), ("inside", "correct"), ("inside", "correct"), ("inside", "refusal"),
        ("beyond-intrinsic", "correct"), ("beyond-intrinsic", "refusal"), ("beyond-intrinsic", "wrong"),
        ("beyond-extrinsic", "refusal"), ("beyond-extrinsic", "refusal"), ("beyond-extrinsic", "wrong"),
    ]
    df = pd.DataFrame(rows, columns=["region_truth", "response_type"])
    df["answerable"] = df["region_truth"] != "beyond-extrinsic"
    return df


def pytest_terminal_summary(terminalreporter):
    """The smoke test's browser check: its time, the tallest page, and where the screenshot of the
    results page is (tests record them as properties, which pytest-xdist hands back from workers)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        found = dict(getattr(report, "user_properties", []))
        if report.when == "call" and "screenshot" in found:
            terminalreporter.write_line(f"browser check of the smoke book: {found['browser_seconds']} s, "
                                        f"tallest page {found['tallest_page']}; results page "
                                        f"screenshot: {found['screenshot']}")
