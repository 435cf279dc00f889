"""Figures shared by the chapters (seaborn on matplotlib)."""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from PIL import Image

from ..evaluation import TEST_SPLITS

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


def trust_difference_intervals(comparisons: pd.DataFrame) -> sns.FacetGrid:
    """Each method's Trust minus each rival's (`evaluation.comparisons`' Trust rows): the mean
    seed-paired difference with its 95% interval as a whisker, a panel per method and split,
    and a dashed line at 0, so that an interval that crosses it reads at once as "is level with"."""
    trust = comparisons[comparisons["metric"] == "trust"]
    g = sns.catplot(trust, x="diff", y="rival", col="split", row="method", kind="point", linestyle="none",
                    height=2.4, aspect=2.2, sharey=False)
    for (method, split), ax in g.axes_dict.items():
        rows = trust[(trust["method"] == method) & (trust["split"] == split)]
        ax.errorbar(rows["diff"], range(len(rows)), xerr=[rows["diff"] - rows["low"], rows["high"] - rows["diff"]],
                    fmt="none", ecolor="k", capsize=3)
        ax.axvline(0, c="grey", lw=1, ls="--")
    g.set_axis_labels("Trust difference (95% interval over seeds)", "")
    g.set_titles("{row_name} minus rival, {col_name}")
    return g


# A response type's colour in every figure of where methods answer and refuse.
RESPONSE_COLOURS = {"correct": "tab:green", "refusal": "tab:blue", "hybrid": "tab:orange", "wrong": "tab:red"}


def response_composition(composition: pd.DataFrame, methods: Sequence[str]) -> sns.FacetGrid:
    """The share of each response type per method (`evaluation.region_composition`), a panel per
    ground-truth region, `methods` in order: correct inside and refusal beyond is the ideal."""
    long = composition.melt(id_vars=["method", "region"], var_name="response", value_name="share")
    g = sns.catplot(long, x="method", y="share", hue="response", col="region", kind="bar", order=methods,
                    palette=RESPONSE_COLOURS, height=3.6, aspect=1.1)
    g.set_xticklabels(rotation=60, ha="right")
    g.set_titles("{col_name}")
    return g


def inside_refusals_by_type(inside: pd.DataFrame, methods: Sequence[str]) -> sns.FacetGrid:
    """Refusal inside the world's boundaries per question type and method
    (`evaluation.inside_refusals`; whiskers: ± one sd over seeds): which types the over-refusal
    comes from."""
    g = sns.catplot(inside, x="qtype", y="refused", hue="method", kind="bar", errorbar="sd", hue_order=methods,
                    height=3.6, aspect=2.4)
    g.set(xlabel="question type", ylabel="refused, inside the boundaries")
    return g


def heldout_refusal_bars(held: pd.DataFrame, seen: str) -> sns.FacetGrid:
    """Refusal of held-out against seen entities and constructions per method
    (`evaluation.heldout_refusal_table`; whiskers: ± one sd over seeds), a panel per kind, `seen`
    the column that says which (`evaluation.SEEN`): close bars mean the model learnt when it does
    not know, not which queries to refuse."""
    g = sns.catplot(held, x="method", y="refusal_rate", hue=seen, col="kind", kind="bar",
                    errorbar="sd", height=3.6, aspect=1.2)
    g.set_xticklabels(rotation=30, ha="right")
    return g


def trust_against_cost(c_rows: pd.DataFrame, methods: Sequence[str]) -> sns.FacetGrid:
    """Mean Trust against the cost of a wrong answer c (`evaluation.trust_by_c`; bands: ± one sd
    over seeds), a line per method of `methods` and a panel per split: the lines fan out by how
    often each method errs."""
    g = sns.relplot(c_rows, x="c", y="trust", hue="method", col="split", kind="line", marker="o",
                    errorbar="sd", hue_order=methods, height=3.6, aspect=1.3)
    g.set_titles("{col_name}")
    return g


def ablation_effects(long: pd.DataFrame) -> sns.FacetGrid:
    """Each ablation's in-domain scores by setting (`tables.ablation_long`), a panel per
    ablation and a line per metric, settings rotated so that long names stay readable."""
    g = sns.catplot(long, x="setting", y="value", hue="metric", col="ablation", kind="point",
                    sharex=False, height=3.4, aspect=1.0, col_wrap=3)
    g.set_titles("{col_name}")
    for ax in g.axes.flat:
        ax.tick_params(axis="x", rotation=30)
    g.figure.subplots_adjust(hspace=0.7)  # the rotated settings clear the next row's titles
    return g


def label_noise_curve(curve: pd.DataFrame, names: Mapping[str, str]) -> sns.FacetGrid:
    """CA-DPO minus vanilla DPO against each label set's error rate (`label_noise.curve`): the
    mean seed-paired difference with its 95% interval as a whisker, a panel per metric of
    `names` (metric -> name) and a line per split, each point labelled with its label set, and a
    dashed line at 0: a whisker that clears it is a verdict."""
    shown = curve[curve["metric"].isin(names)].assign(metric=lambda f: f["metric"].map(names))
    splits = [split for split in TEST_SPLITS if split in set(shown["split"])]  # in-domain first, as in every table
    palette = dict(zip(splits, sns.color_palette(n_colors=len(splits))))
    g = sns.relplot(shown, x="error", y="diff", hue="split", hue_order=splits, palette=palette, col="metric",
                    col_order=list(names.values()), kind="line", marker="o", errorbar=None, height=3.4,
                    aspect=1.1, facet_kws={"sharey": False})
    for metric, ax in g.axes_dict.items():
        panel = shown[shown["metric"] == metric]
        for split, rows in panel.groupby("split"):
            ax.errorbar(rows["error"], rows["diff"], yerr=[rows["diff"] - rows["low"], rows["high"] - rows["diff"]],
                        fmt="none", ecolor=palette[split], capsize=3)
        for _, row in panel[panel["split"] == "test"].iterrows():
            ax.annotate(row["label_set"], (row["error"], row["high"]), textcoords="offset points", xytext=(0, 4),
                        ha="center", fontsize=8)
        ax.axhline(0, c="grey", lw=1, ls="--")
    g.set_axis_labels("label error (vs the exact likelihood)", "CA-DPO minus DPO")
    g.set_titles("{col_name}")
    return g


def panels_as_text(captions: Sequence[str]):
    """A gallery's captions as a numbered list in a fold under it: its questions and answers as
    text (for a screen reader, a search or a copy), not only as pixels."""
    from IPython.display import Markdown

    items = "\n".join(f"{i}. " + " · ".join(line.strip() for line in caption.splitlines() if line.strip())
                      for i, caption in enumerate(captions, 1))
    return Markdown(f"```{{dropdown}} The panels as text\n{items or '(no examples in this run)'}\n```")
