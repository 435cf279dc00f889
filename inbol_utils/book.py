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


def headline_table(table: pd.DataFrame, methods: dict[str, str]) -> pd.DataFrame:
    """The study's answer in one table: mean ± sd over seeds of the headline columns, one row
    per method. `table` is `evaluation.mean_spread`'s (method, split) x (metric, mean/std)
    frame; `methods` maps each method's name to the label shown, in the order shown. A column
    the source cannot measure (`evaluation.measurable`) says so."""
    cells = {label: [mean_sd(table.loc[(m, split), (metric, "mean")], table.loc[(m, split), (metric, "std")])
                     if metric in table else NOT_KNOWN for m in methods]
             for (split, metric), label in HEADLINE_COLUMNS.items()}
    return pd.DataFrame(cells, index=list(methods.values()))


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



def note_not_known(what: str, source: str) -> None:
    """Show, in place of a table or figure, that it needs ground truth this data source lacks
    (a real dataset does not say which queries lie beyond the model's intrinsic boundary)."""
    from IPython.display import Markdown, display

    display(Markdown(f"*{what}: {NOT_KNOWN} ({source}). A real dataset records no fact exposure, "
                     f"difficulty or intrinsic boundary; only what the models do is measured.*"))
