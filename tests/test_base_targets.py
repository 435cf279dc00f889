"""The base model's targets: their figures by hand, the check, the flag, and training in rounds."""
import math
from pathlib import Path

import pandas as pd
import pytest

from inbol_utils import base_targets, training, world
from inbol_utils.tools import bench_worlds

ROOT = Path(__file__).resolve().parents[1]


def scored(rows: list[tuple]) -> pd.DataFrame:
    """(family, difficulty, exposure, response_type) rows; unanswerable rows have no gold answer."""
    frame = pd.DataFrame(rows, columns=["family", "difficulty", "exposure", "response_type"])
    frame["answerable"] = frame["family"] != "unanswerable"
    return frame


def test_figures_count_easy_perception_and_frequent_facts_only():
    frame = scored([
        ("perception", 0.1, -1, "correct"), ("perception", 1 / 3, -1, "wrong"),  # easy: the band's edge counts
        ("perception", 0.5, -1, "wrong"),  # medium: not counted
        ("knowledge", 0.1, 100, "correct"), ("knowledge", 0.1, 30, "correct"), ("knowledge", 0.1, 30, "refusal"),
        ("knowledge", 0.1, 10, "wrong"),  # a rarer fact: not counted
        ("unanswerable", 0.0, -1, "wrong"),
    ])
    assert base_targets.figures(frame, frequent_exposure=30) == {"easy_perception": 0.5,
                                                                 "frequent_facts": pytest.approx(2 / 3)}


def test_misses_name_each_short_figure_and_count_nothing_as_a_miss():
    targets = base_targets.Targets(easy_perception=0.9, frequent_facts=0.95)
    assert base_targets.misses({"easy_perception": 0.9, "frequent_facts": 0.951}, targets) == []
    assert base_targets.misses({"easy_perception": 0.871, "frequent_facts": 0.96}, targets) == \
        ["easy perception 87.1% < 90%"]
    assert base_targets.misses({"easy_perception": 0.95, "frequent_facts": math.nan}, targets) == \
        ["frequent facts nan% < 95%"]


def test_the_frequent_tiers_are_the_two_most_often_shown_at_least_one_row():
    assert world.WorldConfig().frequent_exposure == 30
    assert world.WorldConfig(fact_scale=0.5).frequent_exposure == 15
    assert world.WorldConfig(fact_scale=0.001).frequent_exposure == 1  # never the unseen facts


def test_a_seed_below_its_targets_is_flagged_and_warned_about():
    targets = base_targets.Targets()
    test = scored([("perception", 0.1, -1, "correct"), ("knowledge", 0.1, 30, "wrong")]).assign(seed=0)
    trained = [{"seed": 0, "world_seed": 0, "frequent_exposure": 30, "steps": 2500, "test": test,
                "targets": {"easy_perception": 0.97, "frequent_facts": 0.96}, "misses": []},
               {"seed": 1, "world_seed": 1, "frequent_exposure": 30, "steps": 6500, "test": test,
                "targets": {"easy_perception": 0.88, "frequent_facts": 0.96}, "misses": ["easy perception 88.0% < 90%"]}]
    report = base_targets.report(trained, checked=True)
    assert report["meets_targets"].tolist() == [True, False]
    assert report[["test_easy_perception", "test_frequent_facts"]].iloc[0].tolist() == [1.0, 0.0]
    warning = base_targets.warning(report, targets, cap=6500)
    assert warning.startswith(":::{warning}") and "1 of 2 base models miss" in warning
    assert "seed 1 (world 1): easy perception 88.0% < 90%" in warning and "seed 0" not in warning
    assert base_targets.warning(report.iloc[:1], targets, cap=6500) is None
    caveat = base_targets.caveat(report)
    assert caveat.startswith("1 of 2 base models missed") and "seed 1 (world 1)" in caveat
    assert base_targets.caveat(report.iloc[:1]).startswith("every base model met")


def test_a_real_source_checks_no_target_and_says_so_beside_its_verdicts():
    """easy-VQA records no difficulty or exposure: its base models meet their targets by default
    (`report`), so the verdicts' caveat must not claim that they met any."""
    test = scored([("perception", 0.1, -1, "correct")]).assign(seed=0)
    trained = [{"seed": 0, "world_seed": 0, "frequent_exposure": 30, "steps": 2500, "test": test,
                "targets": {}, "misses": []}]
    report = base_targets.report(trained, checked=False)
    assert report["meets_targets"].all()
    assert base_targets.caveat(report, checked=False).startswith("no accuracy target is checked on this source")


class Counting:
    """A stand-in model and trainer: each round adds its steps to `seen`; the probe reads it."""

    def __init__(self, monkeypatch, goal: int):
        self.seen, self.rounds = 0, []

        def train_sft(model, processor, dataset, args, callbacks):
            self.rounds.append((args.max_steps, args.seed))
            for step in range(1, args.max_steps + 1):
                self.seen += 1
                state = type("State", (), {"global_step": step, "max_steps": args.max_steps})()
                callbacks[0].on_step_end(args, state, type("Control", (), {})(), model=model)
            return pd.DataFrame({"step": range(1, args.max_steps + 1), "loss": 1.0})

        monkeypatch.setattr(training, "train_sft", train_sft)
        self.probe = lambda model: {"seen": self.seen}
        self.done = lambda found: found["seen"] >= goal


def arguments(steps: int, round_: int):
    return training.training_arguments("/tmp/unused", steps, 1, 1e-3, seed=7 + 100 * round_)


@pytest.mark.parametrize("goal, rounds", [(10, [10]), (11, [10, 4]), (15, [10, 4, 4]), (99, [10, 4, 4, 4, 3])])
def test_training_in_rounds_stops_when_the_goal_holds_or_at_the_cap(monkeypatch, goal, rounds):
    fake = Counting(monkeypatch, goal)
    torch_model = type("Model", (), {"training": False, "train": lambda self, mode=True: None})()
    log, curve = training.train_sft_until(torch_model, None, None, arguments, fake.probe, every=5, done=fake.done,
                                          first_steps=10, more_steps=4, max_steps=25)
    assert [steps for steps, _ in fake.rounds] == rounds
    assert [seed for _, seed in fake.rounds] == [7 + 100 * r for r in range(len(rounds))]  # a new order a round
    assert log["step"].tolist() == list(range(1, sum(rounds) + 1))  # counted across rounds
    assert curve["step"].iloc[-1] == sum(rounds) and curve["round"].iloc[-1] == len(rounds) - 1


def test_the_world_benchmark_refuses_a_source_without_worlds_before_it_writes_anything(tmp_path, monkeypatch):
    """`make bench-worlds` runs notebook 00 in its own folder; on a real source there is no world
    to draw nor target to check, so it stops at once with a message."""
    monkeypatch.setattr(bench_worlds, "FOLDER", tmp_path / "bench_worlds")
    with pytest.raises(SystemExit, match="reads source 'easy_vqa': only the generated world has worlds"):
        bench_worlds.main(["--params", str(ROOT / "params" / "easy_vqa.yaml")])
    assert not (tmp_path / "bench_worlds").exists()
