"""Numbers into the book's prose: a thin layer over `myst_nb.glue`; notes where a source lacks them."""
from __future__ import annotations

import ast
import math
import numbers
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import nbformat
import numpy as np
import pandas as pd

from myst_nb import glue

from ..metrics import MIN_REPLICATES, TOO_FEW, VERDICTS

BEATS, LEVEL = VERDICTS[:2]  # what a comparison's verdict says when it is not "trails" (or TOO_FEW)

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


def glue_values(values: Mapping[str, object]) -> None:
    """Glue every name -> value of a reading (`readings`), in order, as `glue_value` does one."""
    for name, value in values.items():
        glue_value(name, value)


def glued_values(executed: Path) -> dict[str, object]:
    """Every value `glue` stored in an executed notebook, by name, parsed back from its text (a
    table or a figure stays its text, as shown): how the tests and the "Try it" record read a run."""
    values = {}
    for cell in nbformat.read(executed, as_version=4).cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            text = output["data"].get(record["mime_prefix"] + "text/plain")
            try:
                values[record["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError):
                values[record["name"]] = float(text) if text in ("nan", "inf", "-inf") else text
    return values


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


def join(names: Sequence[str], last: str = "and") -> str:
    """"A", "A and B", "A, B and C" (or "A, B or C" with `last` "or")."""
    return ", ".join(names[:-1]) + f" {last} " + names[-1] if len(names) > 1 else "".join(names)


def sentence_start(text: str) -> str:
    """`text` with its first letter capitalised and the rest as written ("τ", "IDK-IT" stay)."""
    return text[:1].upper() + text[1:]


def _interval(row: pd.Series) -> str:
    """"+0.031, 95% interval +0.012 to +0.050": a comparison's difference and interval."""
    return f"{row['diff']:+.3f}, 95% interval {row['low']:+.3f} to {row['high']:+.3f}"


def _replicates(counts: Sequence[int]) -> str:
    """"2 replicates" ("1 or 2 replicates"): how many seeds some comparisons rest on."""
    counts = sorted({int(n) for n in counts})
    return f"{join([str(n) for n in counts], 'or')} replicate{'' if counts == [1] else 's'}"


def _not_compared(rows: pd.DataFrame, names: Sequence[str], preposition: str) -> str:
    """"cannot be compared with IDK-IT alone (+0.012) or the base model (+0.150) from 2
    replicates (a verdict needs 3)": comparisons with too few replicates for a verdict
    (`metrics.TOO_FEW`), each named (`names`, one per row) with its difference. Their
    intervals are left out: from so few seeds a narrow one may be luck."""
    named = join([f"{name} ({diff:+.3f})" for name, diff in zip(names, rows["diff"])], "or")
    return (f"cannot be compared {preposition} {named} from {_replicates(rows['n'])} "
            f"(a verdict needs {MIN_REPLICATES})")


def verdict_phrase(row: pd.Series, rival: str) -> str:
    """"beats IDK-IT alone (+0.031, 95% interval +0.012 to +0.050)", from one row of
    `evaluation.compare`'s output and the rival's name as the sentence says it; "cannot be
    compared with IDK-IT alone (+0.031) from 2 replicates (a verdict needs 3)" without a verdict."""
    if row["verdict"] == TOO_FEW:
        return _not_compared(pd.DataFrame([row]), [rival], "with")
    return f"{row['verdict']} {rival} ({_interval(row)})"


def _rows(comparisons: pd.DataFrame, **equal) -> pd.DataFrame:
    """The comparisons whose columns hold the values given (method="InBoL", split="test")."""
    return comparisons[np.logical_and.reduce([comparisons[column] == value for column, value in equal.items()])]


def headline_verdict(comparisons: pd.DataFrame, method: str, rivals: dict[str, str], split: str) -> str:
    """The study's answer as a clause chosen from the paired verdicts on Trust ("InBoL beats
    the base model (...) and is level with IDK-IT alone (...)"), so that the introduction says
    what this run found, whatever it found. `rivals` maps each rival's method name to its name
    in prose. The rivals too few replicates leave without a verdict are named together, last."""
    rows = _rows(comparisons, method=method, split=split, metric="trust").set_index("rival").loc[list(rivals)]
    too_few = rows["verdict"] == TOO_FEW
    phrases = [verdict_phrase(row, rivals[rival]) for rival, row in rows[~too_few].iterrows()]
    if too_few.any():
        phrases.append(_not_compared(rows[too_few], [rivals[r] for r in rows.index[too_few]], "with"))
    return f"{method} " + join(phrases)


class MetricWords(NamedTuple):
    """How a compared metric reads: its column `label` (the main table's header), its `name` in
    prose, and what a verdict of "beats" (`better`) and of "trails" (`worse`) says the method
    does for a user."""

    label: str
    name: str
    better: str
    worse: str


# The compared metrics in words (`evaluation.comparisons`). `diff` is method minus rival, so
# where lower is better (over-refusal, AURC) the words say "fewer" when the number is negative.
METRIC_WORDS = {
    "trust": MetricWords("Trust", "Trust", "scores a higher Trust", "scores a lower Trust"),
    "answerable_acc": MetricWords("helpful", "helpfulness", "gets more of the answerable questions right",
                                  "gets fewer of the answerable questions right"),
    "over_refusal": MetricWords("over-refusal", "over-refusal", "refuses fewer of the questions it should answer",
                                "refuses more of the questions it should answer"),
    "unanswerable_refr": MetricWords("RefR unans.", "refusal of unanswerable questions",
                                     "refuses more of the unanswerable questions",
                                     "refuses fewer of the unanswerable questions"),
    "aurc": MetricWords("AURC", "AURC", "ranks what it knows better (a lower AURC)",
                        "ranks what it knows worse (a higher AURC)"),
}
# A verdict in a table cell; "n<3": too few replicates for one.
SHORT_VERDICTS = dict(zip((*VERDICTS, TOO_FEW), ("beats", "level", "trails", f"n<{MIN_REPLICATES}")))


def change_phrase(comparisons: pd.DataFrame, method: str, rival: str, rival_name: str, split: str) -> str:
    """What `method` changes for a user against `rival` on one split, in words a lecturer can
    repeat, chosen from the seed-paired verdicts of every compared metric: "against IDK-IT
    alone, InBoL gets more of the answerable questions right (+0.050, ...) and refuses fewer of
    the unanswerable questions (-0.094, ...); it is level on Trust and over-refusal". The
    metrics too few replicates leave without a verdict are named last, with their differences."""
    rows = _rows(comparisons, method=method, rival=rival, split=split).set_index("metric")
    level, too_few = rows["verdict"] == LEVEL, rows["verdict"] == TOO_FEW
    changed = [f"{METRIC_WORDS[m].better if row['verdict'] == BEATS else METRIC_WORDS[m].worse} ({_interval(row)})"
               for m, row in rows[~level & ~too_few].iterrows()]
    clauses = [join(changed)] if changed else []
    if level.any():
        every = "every measure: " if level.all() else ""
        clauses.append(f"is level on {every}{join([METRIC_WORDS[m].name for m in rows.index[level]])}")
    if too_few.any():
        clauses.append(_not_compared(rows[too_few], [METRIC_WORDS[m].name for m in rows.index[too_few]], "on"))
    return f"against {rival_name}, {method} " + "; it ".join(clauses)


def comparison_table(comparisons: pd.DataFrame, rivals: Mapping[str, str], intervals: bool = False) -> pd.DataFrame:
    """The seed-paired comparisons as one table that fits the text column: a row per split and
    comparison ("InBoL vs IDK-IT"), a column per metric; each cell the verdict in a word and the
    mean difference (method minus rival), with its 95% interval if `intervals` (for a table of
    one or two metrics: four cells with intervals would not fit). `rivals` maps each rival's
    method name to the label shown."""
    def cell(row: pd.Series) -> str:
        said = f"{SHORT_VERDICTS[row['verdict']]} {row['diff']:+.3f}"
        return f"{said} ({row['low']:+.3f} to {row['high']:+.3f})" if intervals else said

    cells = comparisons.assign(pair=comparisons["method"] + " vs " + comparisons["rival"].map(rivals),
                               measure=comparisons["metric"].map(lambda m: METRIC_WORDS[m].label),
                               cell=comparisons.apply(cell, axis=1))
    table = cells.set_index(["split", "pair", "measure"])["cell"].unstack("measure")
    rows = pd.MultiIndex.from_product([cells["split"].unique(), cells["pair"].unique()])
    return table.reindex(rows)[cells["measure"].unique()].rename_axis(columns=None)


def frontier_phrase(comparisons: pd.DataFrame, method: str, rival: str, rival_name: str, split: str) -> str:
    """Whether `method`'s risk-coverage frontier lies above `rival`'s, or the two sit at
    different points of one frontier, from the seed-paired verdicts on AURC (lower is better)
    and on the greedy operating point's coverage (`frontier.per_run`): "InBoL's frontier lies
    above the control's (AURC ...)" or "InBoL and IDK-IT sit at different points of one
    frontier: their AURC is level (...) while InBoL answers more of the questions (...)"; with
    too few replicates for a verdict on either, that they cannot be compared."""
    rows = _rows(comparisons, method=method, rival=rival, split=split).set_index("metric").loc[["aurc", "coverage"]]
    aurc, coverage = rows.loc["aurc"], rows.loc["coverage"]
    if (rows["verdict"] == TOO_FEW).any():
        return f"{method}'s and {rival_name}'s frontiers " + _not_compared(
            rows, ["AURC", "the share of questions they answer"], "on")
    if aurc["verdict"] != LEVEL:
        side = "above" if aurc["verdict"] == BEATS else "below"
        return f"{method}'s frontier lies {side} {rival_name}'s (AURC {_interval(aurc)})"
    if coverage["verdict"] == LEVEL:
        return (f"{method} and {rival_name} share one frontier and one place on it: their AURC is level "
                f"({_interval(aurc)}) and so is the share of questions they answer ({_interval(coverage)})")
    more = "more" if coverage["diff"] > 0 else "fewer"
    return (f"{method} and {rival_name} sit at different points of one frontier: their AURC is level "
            f"({_interval(aurc)}) while {method} answers {more} of the questions ({_interval(coverage)})")


def noise_levels_phrase(rows: pd.DataFrame) -> str:
    """"N=2 (0.312), N=4 (0.254) and the likelihood (0.180)": each label set of the label-noise
    study (`label_noise.curve`'s rows of one metric and split) with its error rate."""
    return join([f"{_label_set(name)} ({error:.3f})" for name, error in zip(rows["label_set"], rows["error"])])


def _label_set(name: str) -> str:
    """A label set as a sentence names it: "N=2", "the likelihood"."""
    return "the likelihood" if name == "likelihood" else name


def noise_truth_phrase(errors: pd.DataFrame) -> str:
    """The label sets' errors against the world's ground truth (`label_noise.run`'s errors, with
    both truths and the regions), in the order of their noise, and what they are made of: where
    no set calls a never-shown fact known, every such error is a query inside the world's
    boundary called unknown, so a set strays from the world's boundary by how much it calls
    unknown, not by its noise; even the likelihood label calls unknown the facts the base model
    was shown and did not learn (the share quoted)."""
    means = errors.groupby(["label_set", "truth", "region"])["error"].mean()
    noise = means.xs(("likelihood label", "all"), level=("truth", "region")).sort_values(ascending=False)
    world = means.xs(("ground truth", "all"), level=("truth", "region"))[noise.index]
    levels = "against the world's ground truth they are " + join([f"{_label_set(name)} ({error:.3f})"
                                                                  for name, error in world.items()])
    never_shown = means.xs(("ground truth", "beyond-intrinsic"), level=("truth", "region"))
    if (never_shown > 0).any():
        return levels
    return (f"{levels}. Every one of those errors is a query inside the world's boundary that the set calls "
            f"unknown (no set calls a never-shown fact known), so a set strays from the world's boundary by how "
            f"much it calls unknown, not by its noise: even the likelihood label calls unknown "
            f"{means['likelihood', 'ground truth', 'inside']:.3f} of the queries inside the world's boundary, facts "
            f"the world showed and the base model did not learn")


def noise_verdicts_phrase(rows: pd.DataFrame, rival: str = "vanilla DPO") -> str:
    """"at N=2 (label error 0.312) it beats vanilla DPO (+0.021, 95% interval ...); at N=4 ...":
    CA-DPO against `rival` at each noise level, in the order of `rows` (`label_noise.curve`'s
    rows of one metric and split)."""
    return "; ".join(f"at {_label_set(row['label_set'])} (label error {row['error']:.3f}) it "
                     f"{verdict_phrase(row, rival)}" for _, row in rows.iterrows())


def noise_pays_phrase(rows: pd.DataFrame) -> str:
    """Whether the confidence-aware term pays as the labels get noisier, read from the verdicts
    at each level (`label_noise.curve`'s rows of one metric and split, any order): "does not pay
    at any noise level tried", "pays from a label error rate of 0.254 (N=4) up" when it beats
    vanilla DPO there and at every noisier level, or "pays at some levels but not in the order
    of their noise"; with too few replicates, that no verdict can be read."""
    rows = rows.sort_values("error")
    if (rows["verdict"] == TOO_FEW).all():
        return f"cannot be read: a verdict needs {MIN_REPLICATES} replicates"
    pays = rows[rows["verdict"] == BEATS]
    if pays.empty:
        return "does not pay at any noise level tried"
    first = pays.iloc[0]
    if (rows[rows["error"] >= first["error"]]["verdict"] == BEATS).all():
        return f"pays from a label error rate of {first['error']:.3f} ({_label_set(first['label_set'])}) up"
    return "pays at some noise levels but not in the order of their noise"


def weight_gap_phrase(gaps: pd.DataFrame) -> str:
    """Whether CA-DPO's weights single out the mislabelled pairs, from `label_noise.weight_gaps`'
    rows of one truth: each label set's mean weight of wrongly against correctly labelled pairs
    and the seed-paired difference, then which sets weigh the wrong ones less."""
    if gaps.empty:
        return "no label set has mislabelled pairs to weigh"
    each = "; ".join(f"{_label_set(row['label_set'])}: {row['wrong']:.2f} against {row['correct']:.2f} "
                     f"({_interval(row)})" for _, row in gaps.iterrows())
    lower = gaps[gaps["high"] < 0]["label_set"].tolist()
    if (gaps["verdict"] == TOO_FEW).all():
        return f"{each}; a verdict needs {MIN_REPLICATES} replicates"
    if len(lower) == len(gaps):
        return f"{each}: the mislabelled pairs weigh less at every noise level"
    if not lower:
        return f"{each}: at no noise level do the mislabelled pairs weigh less"
    return f"{each}: the mislabelled pairs weigh less at {join([_label_set(name) for name in lower])} only"


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


def difference_phrase(value: float, other: float, spread: float, more: str, less: str, same: str) -> str:
    """`more`, `less` or `same`: how `value` stands against `other`, where a gap no wider than
    `spread` (an sd over seeds, say) counts as no difference, so the prose never reads one."""
    if abs(value - other) <= spread:
        return same
    return more if value > other else less


def crossing_phrase(above: pd.Series) -> str:
    """Where one curve lies above another, in words ("from c = 0.5 on", "at every c shown",
    "at no c shown", "at c = 0 and 4"), from booleans indexed by the curves' x values in order."""
    xs = [f"{x:g}" for x in above.index[above.to_numpy(bool)]]
    if not xs:
        return "at no c shown"
    if len(xs) == len(above):
        return "at every c shown"
    first = int(above.to_numpy(bool).argmax())
    if above.iloc[first:].all():
        return f"from c = {xs[0]} on"
    return "at c = " + join(xs)


def top_shares_phrase(shares: pd.Series, cover: float = 0.8, most: int = 3) -> str | None:
    """The few largest parts of a whole, in words: "fact (75%) and where (20%), 95% in all",
    taking parts in order of size until they cover `cover` of it (at most `most` of them);
    None when the whole is empty."""
    if shares.sum() == 0:
        return None
    ordered = (shares / shares.sum()).sort_values(ascending=False)
    taken = ordered.iloc[:min(most, int((ordered.cumsum() < cover).sum()) + 1)]
    listed = join([f"{name} ({share:.0%})" for name, share in taken.items()])
    return listed if len(taken) == 1 else f"{listed}, {taken.sum():.0%} in all"


def known_clauses(values: dict[str, float], spec: str = ".3f") -> str | None:
    """"with the margin form 0.339 and with no term at all 0.340": each clause whose number this
    run has (a key is the clause's words), joined; None when it has none of them."""
    clauses = [f"{words} {value:{spec}}" for words, value in values.items() if not math.isnan(value)]
    return join(clauses) if clauses else None


def sampling_phrase(measured_shared: bool, target_shared: bool) -> str:
    """How the target's sampler reads a prompt, against the measured run's: once for all its
    samples, or once per sample (`generation.SHARED_PROMPT_MODELS`)."""
    how = {True: "once for all its samples", False: "once per sample"}
    if measured_shared == target_shared:
        return f"{how[target_shared]}, as this run's model does"
    return f"{how[target_shared]}, where this run's model read it {how[measured_shared]}"


def seed_range_phrase(percents: Sequence[float], why: str) -> str:
    """How a percentage varies over the seeds, as a parenthesis: its range and `why` it varies
    when it does ("(mean over 3 seeds; from 54.9% to 58.1%: why)"), else that it does not (one
    seed, or the same value on every seed, as on a smoke run where nothing is known)."""
    low, high = f"{min(percents):.1f}%", f"{max(percents):.1f}%"
    if len(percents) == 1:
        return "(one seed)"
    if low == high:
        return f"(the same on all {len(percents)} seeds)"
    return f"(mean over {len(percents)} seeds; from {low} to {high}: {why})"


def pair_balance_phrase(pairs: pd.DataFrame, tolerance: float = 0.05) -> str:
    """Which way the preference pairs lean, from `pairs` (one row per pair: `seed`, `id`,
    `region`): the share that choose a refusal (every pair beyond the boundary) and how many
    pairs a query gave on each side. DPO learns the balance of its pairs, not that of the
    queries, so chapter 3 says which way its pairs lean, whichever way it is. A side without
    pairs (a `region_mix` that drops it) leaves the counts out."""
    beyond = pairs["region"] != "inside"
    share = float(beyond.mean())
    per_query = {side: len(rows) / len(rows[["seed", "id"]].drop_duplicates()) if len(rows) else math.nan
                 for side, rows in (("beyond", pairs[beyond]), ("inside", pairs[~beyond]))}
    lean = ("lean towards refusal" if share > 0.5 + tolerance else
            "lean towards answering" if share < 0.5 - tolerance else
            "are about balanced between refusing and answering")
    counts = phrase("; a query beyond the boundary that the model did not always refuse gave {beyond:.1f} "
                    "pairs on average, a query inside it {inside:.1f}", "", **per_query)
    return f"The pairs {lean}: {100 * share:.1f}% of them choose a refusal{counts}"


def propensity_phrase(propensity: Sequence[float], n_samples: int) -> str:
    """How much the policy's propensity varies over the pairs, in words: the share of pairs at
    its most common value and what that value means (a propensity is k of the `n_samples`
    samples). Where most pairs share one value, the default certainty (label x propensity)
    only rescales the label's certainty for them: it does not reorder them."""
    values = pd.Series(propensity, dtype=float).round(6)
    modal = float(values.mode().iloc[0])
    share = float((values == modal).mean())
    k = round(modal * n_samples)
    given = ("was a refusal that none of the IDK-IT model's {n} samples gave" if k == 0 else
             "was given by one of the IDK-IT model's {n} samples" if k == 1 else
             "was given by {k} of the IDK-IT model's {n} samples")
    head = (f"{100 * share:.0f}% of the pairs have the same policy propensity, {modal:.2g} (their rejected "
            f"response {given.format(k=k, n=n_samples)})")
    if share < 0.5:
        return f"{head}: the propensities vary, so the product (label × policy) can order the pairs differently " \
               "from the label certainty alone"
    if k == 0:
        return f"{head}: for them the product (label × policy) is 0, whatever the label certainty"
    return (f"{head}: for them the product (label × policy) lies between 0 and {modal:.2g} and orders them as the "
            "label certainty does")


def grid_edges_phrase(settings: Mapping[str, tuple[Sequence[float], float]]) -> str:
    """Where each tuned setting sits on its grid, from `settings`: its name in prose -> (the
    values tried, the value chosen). A choice at an edge may have a better value beyond it,
    which only a wider grid can show; a choice inside one is bracketed by worse ones."""
    edges, others, pairs_only = [], [], True
    for name, (grid, value) in settings.items():
        values = sorted(set(grid))
        lowest, highest = math.isclose(value, values[0]), math.isclose(value, values[-1])
        if len(values) == 1:
            others.append(f"{name} ({value:g}, the only value tried)")
        elif lowest or highest:
            side = "lowest" if lowest else "highest"
            edges.append(f"{name} ({value:g}, the {side} of {join([f'{v:g}' for v in values])})")
            pairs_only &= len(values) == 2
        else:
            others.append(f"{name} ({value:g}, inside its grid)")
    if not edges:
        return f"No tuned setting sits at an edge of its grid: {join(others)}"
    count = f"All {len(edges)}" if not others else f"{len(edges)} of the {len(settings)}"
    sit = "sits at an edge of its grid" if len(edges) == 1 else "sit at an edge of their grid"
    return (f"{count} tuned settings {sit}"
            + (" (a grid of two values has nothing inside)" if pairs_only else "") + f": {join(edges)}"
            + (f"; the others: {join(others)}" if others else "")
            + ". A setting at an edge may have a better value beyond it, which only a wider grid can show")


def last_checkpoint_phrase(selection: pd.DataFrame, names: Mapping[str, str]) -> str:
    """Which methods chose the last scored checkpoint of their schedule, from chapter 3's
    selection table (`method`, `step`, `selected`); `names` maps each method to its name in
    prose, in the order said. A choice at the end of a schedule says it may have been too short."""
    last = {}
    for method in names:
        rows = selection[selection["method"] == method]
        if not rows["selected"].any():
            raise ValueError(f"the selection table has no chosen checkpoint for {method!r}")
        last[method] = bool((rows.loc[rows["selected"], "step"] == rows["step"].max()).any())
    at_end = [names[m] for m in names if last[m]]
    before = [names[m] for m in names if not last[m]]
    if not at_end:
        return "no method chose the last checkpoint of its schedule: for each, an earlier one scored at least as high"
    if not before:
        return ("every method chose the last checkpoint of its schedule: longer schedules might have "
                "scored higher, for all of them alike")
    one = len(at_end) == 1
    return (f"{join(at_end)} chose the last checkpoint of {'its schedule' if one else 'their schedules'} "
            f"and {join(before)} an earlier one: a longer schedule might have scored higher for "
            f"{'it' if one else 'them'}")


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
        return join([f"{e:g}" for e in exposures], "or")
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
       "and the truthful rate need the intrinsic ground truth, which a real source lacks: those cells and "
       "the sentences that would quote them say so. With few seeds the 95% t quantile is large, so \"is "
       "level with\" means that the study could not tell, with little power to tell; below "
       f"{MIN_REPLICATES} seeds no comparison gives a verdict.",
    5: "The study measures each label set's error against the true boundary, which only the generated world "
       "records: on this source it does not run, and the sentences below say so.",
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
