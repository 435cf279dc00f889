"""The world: deterministic, and its ground truth agrees with its pixels."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from inbol_utils import base_targets, world
from inbol_utils.world import CELL_SIZE, CELLS, COLOURS, SHAPES
from worlds import small_config


def cell_pixels(image, cell_name: str) -> np.ndarray:
    row, col = divmod(CELLS.index(cell_name), 2)
    pixels = np.asarray(image).astype(int)
    return pixels[row * CELL_SIZE:(row + 1) * CELL_SIZE, col * CELL_SIZE:(col + 1) * CELL_SIZE]


def asked_cell(question: str) -> str:
    return next(c for c in CELLS if question.endswith(c) or f" {c} " in f" {question} ")


def shape_mask(shape: str, cell: str) -> np.ndarray:
    scene = world.Scene([world.Object("red", shape, CELLS.index(cell))], difficulty=0.0)
    return cell_pixels(world.render(scene, np.random.default_rng(0)), cell).sum(-1) > 60


@pytest.fixture(scope="module")
def clean_world():
    """Difficulty 0: no noise, no fading, so pixels can be checked exactly."""
    splits, facts = world.build_world(small_config(seed=5, max_difficulty=0.0))
    return splits, facts


def test_same_seed_same_world(tiny_world):
    again, _ = world.build_world(small_config(seed=3))
    for name, ds in tiny_world[0].items():
        a, b = ds.select(range(30)), again[name].select(range(30))
        assert a.remove_columns("image").to_list() == b.remove_columns("image").to_list()
        assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a["image"], b["image"]))


def test_other_seed_other_world(tiny_world):
    other, _ = world.build_world(small_config(seed=4))
    assert tiny_world[0]["test"]["question"] != other["test"]["question"]


def test_rows_carry_ground_truth(tiny_world):
    splits, facts = tiny_world
    assert set(splits) == {"base_train", "probe", "validation", "test", "ood"}
    base = splits["base_train"]
    assert set(base["family"]) == {"perception", "knowledge"}, "base training must be answerable only"
    assert all(len(a) == 1 for a in base["answers"])
    for name in ("probe", "validation", "test", "ood"):
        for row in splits[name].remove_columns("image"):
            unanswerable = row["family"] == "unanswerable"
            assert (row["region_truth"] == "beyond-extrinsic") == unanswerable
            assert (len(row["answers"]) == 0) == unanswerable
            if row["family"] == "knowledge":
                assert row["exposure"] >= 0
                assert (row["region_truth"] == "beyond-intrinsic") == (row["exposure"] == 0)
                assert row["answers"] == [facts.city[row["entity"]]]


def test_exposure_matches_base_training(tiny_world):
    splits, _ = tiny_world
    base = splits["base_train"].remove_columns("image").to_pandas()
    shown = base.query("qtype == 'fact'").groupby("entity").size()
    for row in splits["test"].remove_columns("image"):
        if row["family"] == "knowledge":
            assert row["exposure"] == shown.get(row["entity"], 0)


def test_no_query_is_shared_between_training_selection_and_test(tiny_world):
    """Base training, probe half A (IDK-IT), half B (preference pairs), validation (every
    choice), test and OOD: disjoint by id, and the two halves make up the probe split."""
    splits, _ = tiny_world
    halves = {half: world.probe_half(splits["probe"], half) for half in world.PROBE_HALVES}
    groups = {"base_train": splits["base_train"], "A": halves["A"], "B": halves["B"],
              **{name: splits[name] for name in ("validation", "test", "ood")}}
    ids = {name: set(ds["id"]) for name, ds in groups.items()}
    assert all(len(ids[name]) == len(groups[name]) for name in groups), "ids are unique within a split"
    names = list(ids)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert not ids[first] & ids[second], f"{first} and {second} share queries"
    assert ids["A"] | ids["B"] == set(splits["probe"]["id"])
    assert abs(len(ids["A"]) - len(ids["B"])) <= 1
    with pytest.raises(ValueError, match="half"):
        world.probe_half(splits["probe"], "C")


def test_validation_is_built_like_test(tiny_world):
    """Held-out entities and constructions appear in validation too, so that checkpoints are
    chosen on the same kind of queries the test split asks."""
    splits, facts = tiny_world
    validation = splits["validation"].remove_columns("image").to_pandas()
    assert set(validation["family"]) == {"perception", "knowledge", "unanswerable"}
    assert "occluded" in set(validation["construction"])
    assert set(validation["question"]) & set(splits["test"]["question"])  # same phrasings


def test_heldout_entities_and_constructions_never_in_probe(tiny_world):
    splits, facts = tiny_world
    probe = splits["probe"].remove_columns("image").to_pandas()
    assert not probe["heldout"].any()
    assert "occluded" not in set(probe["construction"])
    assert not set(probe["entity"]) & facts.heldout
    test = splits["test"].remove_columns("image").to_pandas()
    assert test["heldout"].any() and "occluded" in set(test["construction"])


def test_unanswerable_constructions_agree_with_pixels(clean_world):
    splits, _ = clean_world
    seen = set()
    for row in splits["test"]:
        kind, pixels = row["construction"], np.asarray(row["image"]).astype(int)
        if kind == "blank":
            assert pixels.max() == 0
        elif kind == "noise":
            assert pixels.std() > 50
        elif kind == "absent_cell":
            assert cell_pixels(row["image"], asked_cell(row["question"])).max() == 0
        elif kind == "occluded":
            assert (cell_pixels(row["image"], asked_cell(row["question"])) == 128).all()
        elif kind == "absent_object":
            colour = next(c for c in COLOURS if f" {c} " in row["question"])
            shape = row["question"].split()[-1]
            for cell in CELLS:
                region = cell_pixels(row["image"], cell)
                present = region.sum(-1) > 60
                if present.any():
                    mean = region[present].mean(0)
                    nearest = min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum())
                    iou = (present & shape_mask(shape, cell)).sum() / (present | shape_mask(shape, cell)).sum()
                    assert not (nearest == colour and iou > 0.9), row["question"]
        seen.add(kind)
    assert {"blank", "noise", "absent_cell", "occluded", "absent_object", "swapped"} <= seen


def test_gold_answers_agree_with_pixels(clean_world):
    splits, _ = clean_world
    checked = 0
    for row in splits["test"]:
        if row["family"] == "unanswerable":
            continue
        image, q, gold = row["image"], row["question"], row["answers"][0]
        masks = {c: cell_pixels(image, c).sum(-1) > 60 for c in CELLS}
        if row["qtype"] == "count":
            assert int(gold) == sum(m.any() for m in masks.values())
        elif row["qtype"] in ("color", "color_of_shape", "shape"):
            cell = asked_cell(q)
            region, mask = cell_pixels(image, cell), masks[cell]
            assert mask.any()
            if row["qtype"] == "shape":
                ious = {s: (mask & shape_mask(s, cell)).sum() / (mask | shape_mask(s, cell)).sum() for s in SHAPES}
                assert max(ious, key=ious.get) == gold
            else:
                mean = region[mask].mean(0)
                assert min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum()) == gold
        elif row["qtype"] == "where":
            colour = q.split()[-2]
            region, mask = cell_pixels(image, gold), masks[gold]
            mean = region[mask].mean(0)
            assert min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum()) == colour
        checked += 1
    assert checked > 50


def test_ood_is_shifted(tiny_world):
    splits, _ = tiny_world
    ood = splits["ood"].remove_columns("image").to_pandas()
    in_domain_questions = set(world.PHRASINGS["in_domain"].values())
    assert "digits" in set(ood["construction"])
    assert not any(q in in_domain_questions for q in ood["question"])
    assert set(ood["question"]).isdisjoint(set(splits["test"]["question"]))


def test_bad_config_names_the_parameter():
    with pytest.raises(ValueError, match="max_difficulty"):
        replace(world.WorldConfig(), max_difficulty=2.0)
    with pytest.raises(ValueError, match="heldout_constructions"):
        world.WorldConfig(heldout_constructions=("teleported",))


@pytest.mark.parametrize("seed", range(4))
def test_never_shown_facts_cannot_be_guessed(seed):
    """No shown entity shares a city with a never-shown one, so a borrowed guess is never right."""
    facts = world.make_facts(world.WorldConfig(seed=seed))
    unseen = {e for e, level in facts.level.items() if level == 0}
    assert unseen and len(unseen) < len(facts.city)
    shown_cities = {facts.city[e] for e in facts.city if e not in unseen}
    assert not shown_cities & {facts.city[e] for e in unseen}
    assert shown_cities <= set(world.CITIES)


def test_all_facts_unseen_still_get_cities():
    facts = world.make_facts(world.WorldConfig(fact_scale=0.0))
    assert set(facts.city) == set(world.all_entities()) and set(facts.city.values()) <= set(world.CITIES)


def test_difficulty_bands_close_at_their_upper_edge():
    bands = world.difficulty_band(pd.Series([0.0, 1 / 3, 0.34, 2 / 3, 1.0]))
    assert bands.astype(str).tolist() == ["easy", "easy", "medium", "medium", "hard"]
    assert base_targets.EASY == world.DIFFICULTY_BANDS["easy"]  # the targets check the first band
