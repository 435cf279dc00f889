"""Figures shared by the chapters (seaborn on matplotlib)."""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from PIL import Image

sns.set_theme(style="whitegrid", context="notebook")


def response_captions(questions: Sequence[str], answers: Sequence[Sequence[str]],
                      responses: Mapping[str, Sequence[str]],
                      regions: Sequence[str] | None = None) -> list[str]:
    """One caption per query for `gallery`: the query's region when `regions` is given (so the
    reader sees which tiles should be answered and which refused, in any order), the question,
    its gold answers ("refuse" when it has none), then each model's response on a line of its
    own, `responses` being label -> the responses in the queries' order."""
    captions = []
    for i, (question, gold) in enumerate(zip(questions, answers)):
        said = "\n".join(f"{label}: {texts[i]}" for label, texts in responses.items())
        region = f"region: {regions[i]}\n" if regions is not None else ""
        captions.append(f"{region}{question} [gold: {', '.join(gold) or 'refuse'}]\n{said}")
    return captions


def gallery(images: Sequence[Image.Image], captions: Sequence[str], ncols: int = 6,
            width: float = 2.3) -> plt.Figure:
    """Images in a grid, each with a wrapped caption under it (pixels shown unsmoothed)."""
    if not images:  # e.g. no disagreements in a tiny smoke run: say so instead of failing
        fig, ax = plt.subplots(figsize=(4, 0.6))
        ax.axis("off")
        ax.text(0, 0.5, "(no examples in this run)", va="center")
        return fig
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, width * nrows * 1.45),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image, interpolation="nearest")
        lines = [part for line in caption.split("\n") for part in textwrap.wrap(line, 28) or [""]]
        ax.set_title("\n".join(lines), fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def risk_coverage(points: pd.DataFrame, methods: Sequence[str]) -> plt.Figure:
    """Selective accuracy against coverage (`frontier.points`), one panel per split and one line
    per method: the mean over seeds with a band of ± one sd, and the method's greedy operating
    point (mean over seeds) marked on it, so that a reader sees both how good each frontier is
    and where on it the method chose to sit. `methods` fixes the order and the colours (the
    chapter's other figures' order); a method without a frontier is left out."""
    shown = [m for m in methods if m in set(points["method"])]
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
    splits = list(dict.fromkeys(points["split"]))
    fig, axes = plt.subplots(1, len(splits), figsize=(5.4 * len(splits), 4.2), sharey=True, squeeze=False)
    for ax, split in zip(axes.flat, splits):
        rows = points[points["split"] == split]
        sns.lineplot(rows[rows["point"] == "curve"], x="coverage", y="selective_accuracy", hue="method",
                     hue_order=shown, palette=palette, errorbar="sd", ax=ax, legend=ax is axes.flat[0])
        greedy = rows[rows["point"] == "greedy"].groupby("method")[["coverage", "selective_accuracy"]].mean()
        for method in shown:
            ax.scatter(*greedy.loc[method], color=palette[method], marker="o", s=70, edgecolor="black", zorder=3)
        ax.set(title=split, xlim=(0, 1.02), xlabel="coverage (share of queries answered)",
               ylabel="selective accuracy (right, of those answered)")
    axes.flat[0].legend(title=None, fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
