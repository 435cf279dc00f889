"""Numbers into the book's prose: a thin layer over `myst_nb.glue`; notes where a source lacks them."""
from __future__ import annotations

import math
import numbers

import pandas as pd

from myst_nb import glue

NOT_KNOWN = "not known on this source"  # a metric or figure that needs ground truth a real source lacks


def glue_value(name: str, value) -> None:
    """Glue a number or string for `{glue:text}` in the prose, without displaying it here.

    numpy scalars are turned into Python numbers first: their repr ("np.float64(0.5)") is what
    glue stores, and myst-nb cannot format that with a spec such as `:.3f`.
    """
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    glue(name, value, display=False)


def mean_sd(mean: float, sd: float, digits: int = 2) -> str:
    """"0.31 ± 0.02": one table cell, short enough that a five-column table fits the page, with
    no-break spaces so that a narrow column never splits it over lines."""
    return f"{mean:.{digits}f}\u00a0±\u00a0{sd:.{digits}f}"


# The few columns a reader needs first: the score, what it costs, and what refusal is for.
HEADLINE_COLUMNS = {("test", "trust"): "Trust in-domain", ("ood", "trust"): "Trust out of domain",
                    ("test", "answerable_acc"): "helpfulness", ("test", "over_refusal"): "over-refusal",
                    ("test", "unanswerable_refr"): "refuses unanswerable"}


def _spread(table: pd.DataFrame, method: str, split: str, metric: str, digits: int = 2) -> str:
    """One cell of `evaluation.mean_spread`'s frame as "mean ± sd"."""
    return mean_sd(table.loc[(method, split), (metric, "mean")], table.loc[(method, split), (metric, "std")], digits)


def headline_table(table: pd.DataFrame, methods: dict[str, str]) -> pd.DataFrame:
    """The study's answer in one table: mean ± sd over seeds of the headline columns, one row
    per method. `table` is `evaluation.mean_spread`'s (method, split) x (metric, mean/std)
    frame; `methods` maps each method's name to the label shown, in the order shown. A column
    the source cannot measure (`evaluation.measurable`) says so."""
    cells = {label: [_spread(table, m, split, metric) if metric in table else NOT_KNOWN for m in methods]
             for (split, metric), label in HEADLINE_COLUMNS.items()}
    return pd.DataFrame(cells, index=list(methods.values()))


def spread_table(table: pd.DataFrame, split: str, columns: dict[str, str], methods: dict[str, str]) -> pd.DataFrame:
    """One narrow view of the main table: mean ± sd over seeds (three decimals, as the prose
    glues them) of `columns` (metric -> header) on one split, one row per method (`methods`
    maps each method's name to its label, in the order shown). `table` is
    `evaluation.mean_spread`'s frame. A metric the source cannot measure is not in `table` and
    is left out: a column that says "not known" in every row would only widen the table."""
    cells = {header: [_spread(table, m, split, metric, 3) for m in methods]
             for metric, header in columns.items() if metric in table}
    return pd.DataFrame(cells, index=list(methods.values())).rename_axis(split)


def verdict_phrase(row: pd.Series, rival: str) -> str:
    """"beats IDK-IT alone (+0.031, 95% interval +0.012 to +0.050)", from one row of
    `evaluation.compare`'s output and the rival's name as the sentence says it."""
    return f"{row['verdict']} {rival} ({row['diff']:+.3f}, 95% interval {row['low']:+.3f} to {row['high']:+.3f})"


def headline_verdict(comparisons: pd.DataFrame, method: str, rivals: dict[str, str], split: str) -> str:
    """The study's answer as a clause chosen from the paired verdicts ("InBoL beats the base
    model (...) and is level with IDK-IT alone (...)"), so that the introduction says what this
    run found, whatever it found. `rivals` maps each rival's method name to its name in prose."""
    rows = comparisons[(comparisons["method"] == method) & (comparisons["split"] == split)].set_index("rival")
    phrases = [verdict_phrase(rows.loc[rival], name) for rival, name in rivals.items()]
    return f"{method} " + ", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]


def phrase(template: str, otherwise: str, **values) -> str:
    """A sentence of the prose with its numbers in place (`template.format(**values)`), or
    `otherwise` when any value is missing (nan: a metric the source cannot measure, an ablation
    that was not run), so that no page prints "nan" where a sentence needs a number."""
    if any(isinstance(v, numbers.Real) and math.isnan(v) for v in values.values()):
        return otherwise
    return template.format(**values)


def size_phrase(observed: float, expected: float, what: str, tolerance: float = 0.25) -> str:
    """"about what X predicts" when `observed` is within `tolerance` (relative) of `expected`,
    else "more" or "less than": a sentence that stays true whichever way the run went."""
    if abs(observed - expected) <= tolerance * abs(expected):
        return f"about what {what} predicts"
    return f"{'more' if observed > expected else 'less'} than {what} predicts"


def untrained_refusal_phrase(refusal_rate: float) -> str:
    """What a base model's refusals mean, in words: it was never shown one, so it answers
    everything, or (rate > 0) some of its answers happen to read as refusals."""
    return ("having never been shown a refusal, they answer everything" if refusal_rate == 0 else
            "they were never shown a refusal, so these are answers that happen to read as one")


def sampling_phrase(measured_shared: bool, target_shared: bool) -> str:
    """How the target's sampler reads a prompt, against the measured run's: once for all its
    samples, or once per sample (`generation.SHARED_PROMPT_MODELS`)."""
    how = {True: "once for all its samples", False: "once per sample"}
    if measured_shared == target_shared:
        return f"{how[target_shared]}, as this run's model does"
    return f"{how[target_shared]}, where this run's model read it {how[measured_shared]}"


def correlation_phrase(r: float) -> str:
    """How closely two signals agree, in words, from their correlation (nan when one of them
    is constant, as on a tiny model that is never right)."""
    if math.isnan(r):
        return "cannot be compared: one of them does not vary"
    return ("track each other closely" if r >= 0.9 else "agree, but loosely" if r >= 0.5
            else "barely agree")


def extremes_phrase(shares: pd.Series, low: str, high: str, tolerance: float = 0.05) -> str:
    """Which question type (the index) has the lowest and which the highest share, in words:
    '"where" is answered worst (54.0%) and "color" best (97.3%)' for `low` "is answered worst"
    and `high` "best" (quoted, not emphasised: glued text is not markdown). When all lie within
    `tolerance` of each other the sentence says so instead of naming a winner that noise chose."""
    if shares.empty:
        raise ValueError("extremes_phrase needs at least one question type; got an empty series")
    if len(shares) == 1:
        return f'"{shares.index[0]}" is the only question type ({100 * shares.iloc[0]:.1f}%)'
    lowest, highest = shares.idxmin(), shares.idxmax()
    if shares[highest] == shares[lowest]:
        return f"every question type lies at {100 * shares[lowest]:.1f}%"
    if shares[highest] - shares[lowest] <= tolerance:
        return (f"the question types lie close together, from {100 * shares[lowest]:.1f}% to "
                f"{100 * shares[highest]:.1f}%")
    return f'"{lowest}" {low} ({100 * shares[lowest]:.1f}%) and "{highest}" {high} ({100 * shares[highest]:.1f}%)'


def threshold_phrase(means: pd.Series, tau: float) -> str:
    """Where a mean confidence per exposure (index: how often the fact was shown) crosses the
    threshold, in words: "below τ = 0.5 for facts shown 0, 1 or 3 times and at or above it for
    facts shown 10, 30 or 100 times". Where the crossing lies is the probe's boundary in the
    long tail; the sentence names the sides as they are, even when they interleave."""
    def times(exposures) -> str:
        counts = [f"{e:g}" for e in exposures]
        return counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " or " + counts[-1]
    below = sorted(means.index[means < tau])
    above = sorted(means.index[means >= tau])
    if not above:
        return f"below τ = {tau:g} at every exposure"
    if not below:
        return f"at or above τ = {tau:g} at every exposure"
    return (f"below τ = {tau:g} for facts shown {times(below)} times and at or above it for facts shown "
            f"{times(above)} times")


def note_not_known(what: str, source: str) -> None:
    """Show, in place of a table or figure, that it needs ground truth this data source lacks
    (a real dataset does not say which queries lie beyond the model's intrinsic boundary)."""
    from IPython.display import Markdown, display

    display(Markdown(f"*{what}: {NOT_KNOWN} ({source}). A real dataset records no fact exposure, "
                     f"difficulty or intrinsic boundary; only what the models do is measured.*"))


# What a chapter's prose, written for the generated world, means on a real source.
SOURCE_NAMES = {"easy_vqa": "easy-VQA", "datasets": "a `datasets` VQA table"}
ON_A_REAL_SOURCE = {
    0: "Only the method carries over from this chapter's prose. There are no entities, made-up facts, "
       "exposure or difficulty bands: sentences about them say so, and their figures are replaced by a "
       "note. The out-of-domain split and the unanswerable constructions are the source's own (this part's "
       "opening page describes them), the vision tower is pretrained on the source's image labels where it "
       "has them, and the world's knobs in \"Try it\" (`fact_scale`, `max_difficulty`) do nothing here. To "
       "rerun, use this run's parameter file (`params/easy_vqa.yaml` for the easy-VQA part) where a command "
       "says `params/default.yaml`.",
    1: "The probe and both confidences run as described, but the boundary they draw cannot be checked: "
       "nothing records which questions the model could know, so everything about \"the fact was shown\", "
       "exposure or never-shown facts is \"not known\" here. Agreement with the greedy answer's "
       "correctness is measured.",
    2: "The data are built as described; the queries beyond the extrinsic boundary are the constructed "
       "ones (blank, noise, swapped and absent-attribute questions), and there are no never-shown facts.",
    3: "The method and its tuning are exactly as described; only the rows differ. Which way the model "
       "drifts without the anchor is measured in chapter 4's ablation, and need not be the generated "
       "world's.",
    4: "Over-refusal inside the boundaries, refusal of never-shown facts, hybrids inside the boundaries "
       "and the truthful rate need the intrinsic ground truth, which a real source lacks: those cells say "
       "so, and sentences that quote them print nan. With few seeds the 95% t quantile is large, so \"is "
       "level with\" means that the study could not tell, with little power to tell.",
}


def source_banner(source: str, chapter: int) -> None:
    """Under a chapter's introduction: on a real data source, a note saying which of the prose,
    written for the generated world, does not apply. Nothing on the generated world."""
    from IPython.display import Markdown, display

    if source == "generated":
        return
    name = SOURCE_NAMES.get(source, source)
    display(Markdown(f":::{{note}}\n**This chapter ran on {name}**, not on the generated world. "
                     f"{ON_A_REAL_SOURCE[chapter]}\n:::"))
