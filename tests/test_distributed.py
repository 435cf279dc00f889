"""`torchrun` runs the training recipes data-parallel unchanged: two CPU processes (gloo)."""
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch

from inbol_utils import answers, idk_data, modeling


@pytest.mark.slow
def test_two_process_idk_it_saves_a_loadable_model(tmp_path, processor, tiny_model, tiny_world):
    rows = tiny_world[0]["probe"].select(range(32))
    responses = [a[0] if a else answers.REFUSAL_RESPONSES[0] for a in rows["answers"]]
    ds = datasets.Dataset.from_dict({
        "id": rows["id"], "image": list(rows["image"]), "question": rows["question"],
        "response": responses, "region": rows["region_truth"], "region_truth": rows["region_truth"],
        "family": rows["family"], "confidence": [1.0] * len(rows),
    }, features=idk_data.IDK_FEATURES)
    idk_data.save(ds, tmp_path / "idk_it", idk_data.labelling(0.5, "sampled", {}))
    modeling.save(tiny_model, processor, tmp_path / "base")

    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "inbol_utils.recipes", "idk-it",
         "--model", str(tmp_path / "base"), "--data", str(tmp_path / "idk_it"),
         "--out", str(tmp_path / "trained"), "--steps", "3", "--batch-size", "4", "--lr", "1e-2"],
        env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-4000:]
    assert "trained by 2 process(es)" in result.stdout, result.stdout[-2000:]

    trained, _ = modeling.load(tmp_path / "trained", device="cpu")
    before = dict(tiny_model.named_parameters())
    changed = [n for n, p in trained.named_parameters() if not torch.equal(p, before[n])]
    assert changed and not any("vision_tower" in n for n in changed)  # LM trained, tower frozen
