"""Real data sources: the easy-VQA adapter, the generic `datasets` adapter, the extrinsic
constructions they make, and what the metrics do where the intrinsic truth is not known."""
import json

import datasets
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from inbol_utils import easy_vqa, evaluation, idk_data, metrics, protocol, real_data, sources, vqa_datasets, world
from inbol_utils.real_data import RealConfig
from worlds import small_config

SMALL = RealConfig(seed=1, n_base_train=300, n_probe=100, n_validation=40, n_test=80, n_ood=40)


@pytest.fixture(scope="module")
def evqa_tables():
    return easy_vqa.tables()


@pytest.fixture(scope="module")
def evqa_splits(evqa_tables):
    return real_data.build_splits(*evqa_tables, SMALL)


# ------------------------------------------------------------------------------ easy-VQA


def test_image_attributes_follow_the_questions():
    derive = easy_vqa.image_attributes
    assert derive([("what is the blue shape?", "rectangle")]) == {"colour": "blue", "shape": "rectangle"}
    assert derive([("what color is the triangle?", "teal")]) == {"colour": "teal", "shape": "triangle"}
    # a negated yes/no question: "is there not a red shape?" - "no" means it is red
    assert derive([("is there not a red shape?", "no")])["colour"] == "red"
    assert derive([("is no red shape present?", "yes")])["colour"] == easy_vqa.UNKNOWN
    # two shapes excluded leave the third
    assert derive([("is there a circle?", "no"), ("does the image not contain a triangle?", "yes")])["shape"] == "rectangle"
    with pytest.raises(ValueError, match="contradict"):
        derive([("what color is the shape?", "red"), ("is there a red shape in the image?", "no")])


def test_easy_vqa_tables_cover_the_package(evqa_tables):
    train, test = evqa_tables
    assert len(train.image_ids()) == 4000 and len(test.image_ids()) == 1000
    assert len(train.items) == 38575 and len(test.items) == 9673
    answers = {a for ans in pd.concat([train.items, test.items])["answers"] for a in ans}
    assert answers == set(easy_vqa.COLOURS) | set(easy_vqa.SHAPES) | {"yes", "no"}
    known = [a for a in train.attributes.values() if easy_vqa.UNKNOWN not in a.values()]
    assert len(known) > 0.85 * len(train.attributes)
    # what was derived from the questions is what the pixels show: the shape's colour is the
    # palette colour nearest to the median of the pixels that differ from the background
    palette = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0),
               "gray": (128, 128, 128), "teal": (0, 128, 128), "brown": (165, 42, 42), "yellow": (255, 255, 0)}
    checked = 0
    for image_id, attributes in list(train.attributes.items())[:300]:
        if attributes["colour"] == easy_vqa.UNKNOWN:
            continue
        pixels = np.asarray(train.load_image(image_id)).reshape(-1, 3).astype(int)
        shape = np.median(pixels[np.abs(pixels - pixels[0]).sum(1) > 60], axis=0)
        nearest = min(palette, key=lambda c: np.abs(shape - palette[c]).sum())
        assert nearest == attributes["colour"], (image_id, attributes, shape)
        checked += 1
    assert checked > 250


def test_easy_vqa_splits_have_the_schema_and_the_shares(evqa_splits):
    assert set(evqa_splits) == {"base_train", "probe", "validation", "test", "ood"}
    for name, ds in evqa_splits.items():
        assert ds.features == world.FEATURES
        frame = ds.remove_columns("image").to_pandas()
        assert frame["id"].is_unique and frame["id"].str.startswith(name).all()
        assert set(frame["region_truth"]) <= {world.REGION_UNKNOWN, "beyond-extrinsic"}
        assert ((frame["family"] == "unanswerable") == (frame["region_truth"] == "beyond-extrinsic")).all()
        assert (frame["answers"].map(len) == 0).eq(frame["family"] == "unanswerable").all()
        assert ds[0]["image"].size == (SMALL.image_size, SMALL.image_size)
    base = evqa_splits["base_train"].remove_columns("image").to_pandas()
    assert len(base) == SMALL.n_base_train and (base["family"] == "perception").all()
    probe = evqa_splits["probe"].remove_columns("image").to_pandas()
    assert (probe["family"] == "unanswerable").sum() == round(SMALL.unanswerable_share * SMALL.n_probe)
    assert set(probe["construction"]) == {"none", "absent", "blank", "swapped"}  # noise is held out
    test = evqa_splits["test"].remove_columns("image").to_pandas()
    assert set(test["construction"]) == {"none", *real_data.CONSTRUCTIONS}
    assert test.loc[test["construction"] == "noise", "heldout"].all()
    blank_noise = test[test["construction"].isin(["blank", "noise"])]
    assert set(blank_noise["qtype"]) <= {"color", "shape"}  # never a yes/no question: it has an answer


def test_splits_are_image_disjoint_and_reproducible(evqa_tables, evqa_splits):
    train, _ = evqa_tables
    pools = real_data.partition(train, {"validation": 0.1, "probe": 0.3, "base_train": 1.0},
                                np.random.default_rng(0))
    assert sum(map(len, pools.values())) == 4000
    assert not set(pools["probe"]) & set(pools["base_train"]) and not set(pools["validation"]) & set(pools["probe"])
    again = real_data.build_splits(*evqa_tables, SMALL)
    assert again["test"]["question"] == evqa_splits["test"]["question"]
    assert np.array_equal(np.asarray(again["ood"][5]["image"]), np.asarray(evqa_splits["ood"][5]["image"]))


def test_absent_and_swapped_questions_ask_what_the_image_lacks(evqa_tables):
    train, _ = evqa_tables
    rng = np.random.default_rng(0)
    ids = train.image_ids()[:300]
    open_items = train.items[train.items["answers"].map(real_data.is_open)]
    for kind in ("absent", "swapped"):
        for _ in range(200):
            row = real_data.construct(train, kind, ids, open_items, rng, 32)
            named = easy_vqa.premise(row.question)
            assert named is not None, row.question  # "what color is the shape?" would be answerable
            has = train.attributes[row.image_id][named[0]]
            assert has != easy_vqa.UNKNOWN and has != named[1], (row, has)
    teal = [i for i, a in train.attributes.items() if a["colour"] == "teal"][:50]
    for image_id in teal:  # a teal image is never asked about "the teal shape"
        question = train.absent_question(rng, image_id)[0]
        assert "teal" not in question


# ------------------------------------------------------------------------------ generic adapter


def _image(colour) -> Image.Image:
    return Image.new("RGB", (40, 30), colour)


def _vqa_table(n_images: int, offset: int, with_answerable: bool) -> dict:
    rows = {"image": [], "question": [], "answers": [], "answer_type": []}
    if with_answerable:
        rows["answerable"] = []
    for i in range(n_images):
        colour = ((i + offset) % 256, 80, 160)  # a different image per i
        for question, answer, kind in (("what color is the cup?", f"shade{i + offset}", "other"),
                                       ("is there a cup?", "yes", "yes/no"),
                                       ("how many cups are there?", "2", "number")):
            rows["image"].append(_image(colour))
            rows["question"].append(question)
            rows["answers"].append([{"answer": answer, "answer_confidence": "yes"}] * 3)
            rows["answer_type"].append(kind)
            if with_answerable:
                rows["answerable"].append(0 if (i % 5 == 0 and kind == "other") else 1)
    return rows


@pytest.fixture
def local_vqa(tmp_path):
    """A VQAv2/VizWiz-shaped DatasetDict on disk: answers as records, an answerable flag."""
    folder = tmp_path / "my_vqa"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(_vqa_table(60, 0, True)),
        "validation": datasets.Dataset.from_dict(_vqa_table(30, 100, True)),
        "test": datasets.Dataset.from_dict({"image": [_image((0, 0, 0))], "question": ["hidden?"],
                                            "answers": [[]], "answer_type": ["other"], "answerable": [1]}),
    }).save_to_disk(str(folder))
    return folder


def test_generic_adapter_reads_a_local_datasets_folder(local_vqa):
    train, test = vqa_datasets.tables(str(local_vqa))  # validation, not the answerless test
    assert len(train.image_ids()) == 60 and len(test.image_ids()) == 30
    assert set(train.items["qtype"]) == {"other", "yes_no", "number"}
    annotated = train.items[train.items["family"] == "unanswerable"]
    assert len(annotated) == 12 and (annotated["answers"].map(len) == 0).all()
    first = train.items.iloc[3]  # image 1, "what color is the cup?"
    assert first["answers"] == ["shade1"] and train.load_image(first["image_id"]).size == (40, 30)

    config = RealConfig(n_base_train=60, n_probe=40, n_validation=10, n_test=30, n_ood=20)
    splits = real_data.build_splits(train, test, config)
    for ds in splits.values():
        assert ds.features == world.FEATURES and ds[0]["image"].size == (32, 32)
    base = splits["base_train"].remove_columns("image").to_pandas()
    assert (base["family"] == "vqa").all()  # base training never sees an unanswerable row
    test_rows = splits["test"].remove_columns("image").to_pandas()
    made = test_rows[test_rows["construction"].isin(["blank", "noise", "swapped"])]
    assert len(made) == round(0.3 * 30) and set(made["question"]) == {"what color is the cup?"}
    assert "absent" not in set(test_rows["construction"])  # no annotations say what is absent
    assert (test_rows.loc[test_rows["construction"] == "annotated", "answers"].map(len) == 0).all()


def test_generic_adapter_cuts_a_single_split_by_image_and_names_missing_columns(tmp_path, monkeypatch):
    folder = tmp_path / "one_split"
    datasets.Dataset.from_dict(_vqa_table(20, 0, False)).save_to_disk(str(folder))
    train, test = vqa_datasets.tables(str(folder))
    assert len(train.image_ids()) == 16 and len(test.image_ids()) == 4
    assert not set(train.image_ids()) & set(test.image_ids())
    files = tmp_path / "parquet_files"  # a folder of data files, read by load_dataset
    files.mkdir()
    datasets.Dataset.from_dict(_vqa_table(20, 0, False)).to_parquet(str(files / "train.parquet"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    from_files, _ = vqa_datasets.tables(str(files))
    assert from_files.image_ids() == train.image_ids()
    bad = tmp_path / "bad"
    datasets.Dataset.from_dict({"image": [_image((1, 2, 3))], "query": ["q"], "answers": [["a"]]}).save_to_disk(str(bad))
    with pytest.raises(ValueError, match="question"):
        vqa_datasets.tables(str(bad))
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        vqa_datasets.tables("no-such-owner/no-such-vqa")


def test_source_parameters_are_checked_and_recorded(local_vqa, tmp_path):
    with pytest.raises(ValueError, match="source must be one of"):
        sources.check("vqav2")
    with pytest.raises(ValueError, match="source_path"):
        sources.check("datasets")
    with pytest.raises(ValueError, match="source_path"):
        sources.check("easy_vqa", str(local_vqa))
    config = world.WorldConfig(n_base_perception=50, n_probe=30, n_validation=10, n_test=20, n_ood=10)
    sources.build("datasets", str(local_vqa), config, tmp_path / "world")
    info = json.loads((tmp_path / "world" / sources.INFO_FILE).read_text())
    assert info["source"] == "datasets" and info["intrinsic_truth"] is False
    assert {"what", "color", "cup?", "yes", "2"} <= set(info["words"])
    assert any(w.startswith("shade") for w in info["words"])  # the answers' words too
    assert sources.vision_task(tmp_path / "world", config, 0) is None  # no image labels


def test_easy_vqa_vision_labels_come_from_the_entities():
    labels = easy_vqa.vision_labels(["blue rectangle", "? circle", "teal ?"])
    assert labels["colour"] == [easy_vqa.COLOURS.index("blue"), -100, easy_vqa.COLOURS.index("teal")]
    assert labels["shape"] == [easy_vqa.SHAPES.index("rectangle"), easy_vqa.SHAPES.index("circle"), -100]


# ------------------------------------------------------------------------------ unknown intrinsic truth


def _scored(region_truths, types) -> pd.DataFrame:
    return pd.DataFrame({"region_truth": region_truths, "response_type": types,
                         "answerable": [r != "beyond-extrinsic" for r in region_truths],
                         "base_known": [True] * len(types), "split": "test", "method": "m", "seed": 0,
                         "family": ["unanswerable" if r == "beyond-extrinsic" else "vqa" for r in region_truths],
                         "heldout": False})


def test_metrics_report_only_what_real_data_can_measure():
    frame = _scored(["unknown", "unknown", "beyond-extrinsic", "beyond-extrinsic"],
                    ["correct", "refusal", "refusal", "wrong"])
    result = evaluation.summary(frame)
    assert result["answerable_acc"] == 0.5 and result["unanswerable_refr"] == 0.5
    assert np.isnan(result["over_refusal"]) and np.isnan(result["beyond_intrinsic_refr"])
    assert np.isnan(result["truthful"])  # which answerable queries are known: not recorded
    matrix = metrics.region_response_matrix(frame)
    assert list(matrix.index) == [*world.REGIONS, world.REGION_UNKNOWN]
    assert matrix.loc["unknown", "n"] == 2 and matrix.loc["inside", "n"] == 0
    assert evaluation.measurable(evaluation.HEADLINE, False) == [
        c for c in evaluation.HEADLINE if c not in ("over_refusal", "beyond_intrinsic_refr", "truthful")]
    assert evaluation.measurable(evaluation.HEADLINE, True) == list(evaluation.HEADLINE)
    held = evaluation.heldout_refusal(frame)  # constructions only: the unknown rows are not "beyond"
    assert held["n"].sum() == 2 and set(held["kind"]) == {"construction"}


def test_training_sets_accept_unknown_truth_but_not_an_unknown_label(evqa_splits):
    probe = evqa_splits["probe"]
    rows = pd.DataFrame({"id": probe["id"][:2], "question": probe["question"][:2], "response": ["yes", "no"],
                         "region": ["inside", "inside"], "region_truth": ["unknown", "unknown"],
                         "family": ["perception"] * 2, "confidence": [0.9, 0.8]})
    idk_data.validate(idk_data.to_dataset(rows, probe, idk_data.IDK_FEATURES), idk_data.IDK_FEATURES, "set")
    with pytest.raises(ValueError, match="'region' must be one of"):
        idk_data.validate(idk_data.to_dataset(rows.assign(region="unknown"), probe, idk_data.IDK_FEATURES),
                          idk_data.IDK_FEATURES, "set")


def test_the_generated_worlds_vision_task_renders_only_the_scenes_it_draws(tmp_path, monkeypatch):
    config = small_config(seed=3, n_probe=16)
    protocol.build_world(tmp_path, 0, config)
    task = sources.vision_task(protocol.world_dir(tmp_path, 0), config, 0, draws=40)
    assert len(task.images) == 40 and task.labels["colour"].shape == (40, 4)
    monkeypatch.setattr(sources, "SCENES", 25)  # a long pretraining draws from the fixed pool
    assert len(sources.vision_task(protocol.world_dir(tmp_path, 0), config, 0, draws=40).images) == 25
