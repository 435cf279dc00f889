"""Chapter 4's readings of its results: the tables it shows and the values its prose glues.

Each reading takes the chapter's frames (`evaluation.mean_spread`'s main table,
`evaluation.comparisons`, the scored responses...) and returns what the prose quotes, as glue
name -> value (`prose.glue_values` glues them), so that a cell of the chapter reads like a step
of the method and every sentence can be checked without a kernel. A sentence whose number the
source cannot measure, or whose ablation did not run, says so instead (`prose.phrase`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import ablations, base_targets, evaluation, frontier, label_noise, metrics, replicates
from ..methods import BASE, CONTROL, DPO, IDKIT, INBOL, METHODS, REGISTRY, TRAINED
from ..runner import environment
from ..runner.parameters import shown_path
from . import prose
from .prose import NOT_KNOWN

# The main table's metrics, metric -> header, and the narrow tables (each fits the text column).
COLUMNS = {"trust": "Trust", "acc": "Acc", "refr": "RefR", "err": "Err", "hybrid": "hybrid",
           "answerable_acc": "helpful", "known_acc": "known acc", "over_refusal": "over-refusal",
           "known_refr": "known refr", "unanswerable_refr": "RefR unans.", "beyond_intrinsic_refr": "RefR unseen fact"}
GROUPS = (("trust", "acc", "refr", "err"), ("answerable_acc", "over_refusal", "known_acc", "known_refr"),
          ("unanswerable_refr", "beyond_intrinsic_refr", "hybrid"))
# InBoL's rivals as the prose names them; the headline's are the question, then the floor.
RIVAL_NAMES = {BASE: "the base model", IDKIT: "IDK-IT alone", DPO: "vanilla DPO", CONTROL: "the control"}
HEADLINE_RIVALS = {IDKIT: "IDK-IT alone", BASE: "the base model"}
# The frontier tables' columns, and the compared metrics as the replicate check names them.
FRONTIER_COLUMNS = {"aurc": "AURC", "coverage": "answers", "selective_accuracy": "right, of those"}
COMPARED_NAMES = {"trust": "Trust", "answerable_acc": "helpfulness", "over_refusal": "over-refusal",
                  "unanswerable_refr": "refusal of unanswerable queries", "aurc": "AURC"}
# What the reproducibility section quotes of this stage's machine and libraries.
MACHINE_FACTS = ("cpu", "cores", "float_kernels", "torch_threads", "python")
LIBRARIES = ("torch", "transformers", "datasets")


def measured(table: pd.DataFrame, method: str, split: str, metric: str, stat: str = "mean") -> float:
    """One cell of the main table (`evaluation.mean_spread`'s frame): a method's mean (or "std")
    of a metric on a split; nan for a metric the source cannot measure (not in the table)."""
    return table.loc[(method, split), (metric, stat)] if metric in table else np.nan


def main_tables(table: pd.DataFrame, split: str, labels: Mapping[str, str]) -> list[pd.DataFrame]:
    """The main table on one split as `GROUPS`' narrow tables (`prose.spread_table`), one row
    per method of `labels` (method -> label shown)."""
    return [prose.spread_table(table, split, {c: COLUMNS[c] for c in group}, labels) for group in GROUPS]


def note_unmeasured(table: pd.DataFrame, source: str) -> None:
    """Under the main table: which of its columns this source cannot measure (none on the
    generated world), so that a missing column is never taken for an omission."""
    unmeasured = [header for metric, header in COLUMNS.items() if metric not in table]
    if unmeasured:
        prose.note_not_known(", ".join(unmeasured), source)


def warn_below_targets(base_models: pd.DataFrame) -> None:
    """Above the verdicts, never silently: a warning when some base model missed its accuracy
    targets (`results/base_models.csv`), since the verdicts then rest partly on it."""
    from IPython.display import Markdown, display

    if not base_models["meets_targets"].all():  # the caveat starts "<n> of <m> base models"
        display(Markdown(f":::{{admonition}} Base models below their targets\n:class: warning\n"
                         f"{base_targets.caveat(base_models)}.\n:::"))


def verdict_values(comparisons: pd.DataFrame) -> dict[str, object]:
    """Every Trust comparison's verdict, mean difference and 95% interval, as
    `verdict_inbol_vs_base_test`, `diff_...`, `low_...`, `high_...`."""
    values = {}
    for _, row in comparisons[comparisons["metric"] == "trust"].iterrows():
        name = f"{row['method'].lower()}_vs_{REGISTRY[row['rival']].key}_{row['split']}"
        values[f"verdict_{name}"] = row["verdict"]
        values |= {f"{field}_{name}": row[field] for field in ("diff", "low", "high")}
    return values


def main_table_values(table: pd.DataFrame) -> dict[str, float]:
    """Every cell of the main table, for the prose: `<key>_<split>_<metric>` (the mean over
    seeds) and `..._sd`, nan for a metric the source cannot measure."""
    values = {}
    for split in evaluation.TEST_SPLITS:
        for method in METHODS:
            for metric in COLUMNS:
                name = f"{REGISTRY[method].key}_{split}_{metric}"
                values[name] = measured(table, method, split, metric)
                values[f"{name}_sd"] = measured(table, method, split, metric, "std")
    return values


def never_shown_reading(table: pd.DataFrame) -> str:
    """How often IDK-IT and InBoL refuse questions about never-shown facts, in-domain."""
    return prose.phrase("Of queries about never-shown facts, IDK-IT refuses {idkit:.3f}, InBoL {inbol:.3f}",
                        f"Refusal of never-shown facts is {NOT_KNOWN}",
                        idkit=measured(table, IDKIT, "test", "beyond_intrinsic_refr"),
                        inbol=measured(table, INBOL, "test", "beyond_intrinsic_refr"))


def claim_values(comparisons: pd.DataFrame, n_seeds: int) -> dict[str, object]:
    """The paper's two headline claims (`evaluation.PAPER_CLAIMS`) against this run's verdicts,
    `paper_claim_<rival key>`: "agrees with", "contradicts" (InBoL trails on some split), "does
    not confirm" (level: the run cannot tell them apart), or that too few replicates cannot test
    it; and how wide the intervals they rest on are: `dof` and `t_quantile`."""
    values = {}
    for method, rival in evaluation.PAPER_CLAIMS:
        trails = (evaluation.claim_verdicts(comparisons, method, rival) == metrics.VERDICTS[2]).any()
        values[f"paper_claim_{REGISTRY[rival].key}"] = (
            f"cannot test (from {n_seeds} replicates; a verdict needs {metrics.MIN_REPLICATES})"
            if n_seeds < metrics.MIN_REPLICATES else "agrees with" if evaluation.claim_holds(comparisons, method, rival)
            else "contradicts" if trails else "does not confirm")
    return values | {"dof": n_seeds - 1, "t_quantile": metrics.t_quantile(n_seeds)}


def headline_verdicts(comparisons: pd.DataFrame) -> dict[str, str]:
    """The study's answer on each split, for the introduction: `headline_verdict_<split>`, InBoL
    against IDK-IT alone (the question), then against the base model (the floor)."""
    return {f"headline_verdict_{split}": prose.headline_verdict(comparisons, REGISTRY[INBOL].label,
                                                                HEADLINE_RIVALS, split)
            for split in evaluation.TEST_SPLITS}


def change_phrases(comparisons: pd.DataFrame) -> dict[str, str]:
    """What InBoL changes for a user against each rival on each split, in words
    (`prose.change_phrase`): `change_<rival key>_<split>`."""
    return {f"change_{REGISTRY[rival].key}_{split}":
            prose.change_phrase(comparisons, REGISTRY[INBOL].label, rival, name, split)
            for rival, name in RIVAL_NAMES.items() for split in evaluation.TEST_SPLITS}


def frontier_tables(frontier_runs: pd.DataFrame, labels: Mapping[str, str]) -> list[pd.DataFrame]:
    """Each model's AURC and greedy operating point, mean ± sd over seeds, one table per split
    (`frontier.per_run`'s frame); `labels` maps each method to its label."""
    spread = evaluation.mean_spread(frontier_runs, list(FRONTIER_COLUMNS))
    shown = {m: labels[m] for m in frontier.METHODS}
    return [prose.spread_table(spread, split, FRONTIER_COLUMNS, shown) for split in evaluation.TEST_SPLITS]


def frontier_phrases(frontier_comparisons: pd.DataFrame) -> dict[str, str]:
    """Whether InBoL's frontier lies above each rival's or they share one (`prose.frontier_phrase`):
    `frontier_<rival key>_<split>`."""
    return {f"frontier_{REGISTRY[rival].key}_{split}":
            prose.frontier_phrase(frontier_comparisons, REGISTRY[INBOL].label, rival, RIVAL_NAMES[rival], split)
            for rival in frontier.PAIRS[INBOL] for split in evaluation.TEST_SPLITS}


def replicate_reading(differences: pd.DataFrame, worlds: Mapping[int, int]) -> str:
    """Whether any firm verdict rests on some replicates only (`replicates.contradicted`), naming
    each replicate against it with its world. Where the seeds share one world (a fixed
    `world_seed`, a real source) a replicate is its base model and what was trained from it, and
    the sentence says so rather than blame a world."""
    firm = int(differences[differences["verdict"].isin(replicates.FIRM)][["metric", "method", "rival", "split"]]
               .drop_duplicates().shape[0])
    against = replicates.contradicted(differences)
    own_worlds = len(set(worlds.values())) > 1
    if firm == 0:
        return "No comparison gives a firm verdict, so none can rest on one replicate"
    if against.empty:
        one = "one replicate's world" if own_worlds else "one replicate"
        return (f"Every one of the {firm} firm verdicts holds on each replicate: every replicate's own difference "
                f"has the sign of the mean, so none rests on {one}")
    cases = "; ".join(
        f"{r.method} {r.verdict} {REGISTRY[r.rival].label} on {COMPARED_NAMES.get(r.metric, r.metric)} ({r.split}), "
        f"against it on " + ", ".join(f"seed {s} (world {worlds.get(s, '?')})" for s in r.seeds_against)
        for r in against.itertuples(index=False))
    rest_on = "the others' worlds" if own_worlds else "the other replicates"
    return (f"{len(against)} of the {firm} firm verdicts do not hold on every replicate, so they rest on "
            f"{rest_on}: {cases}")


def known_reading(table: pd.DataFrame, intrinsic_truth: bool) -> str:
    """InBoL's over-refusal against the world and against the base model's own knowledge:
    whether part of what the world calls over-refusal is of queries the base model never knew."""
    if not intrinsic_truth:
        return f"while which answerable queries lie inside the boundaries is {NOT_KNOWN}"
    over_refusal = measured(table, INBOL, "test", "over_refusal")
    return f"against {over_refusal:.3f} of the queries inside the world's boundaries, " + (
        "so part of what the world calls over-refusal is the refusal of queries the base model never knew"
        if measured(table, INBOL, "test", "known_refr") < over_refusal else
        "so measuring against the model's own knowledge does not shrink it")


def inside_reading(rates: pd.DataFrame, types: str | None) -> str:
    """Each trained method's refusal inside the world's boundaries (`rates`:
    `evaluation.inside_refusal_rates`), and the question types most of InBoL's refusals there
    are of (`types`, None when it refused none there)."""
    refused = {REGISTRY[m].key: rates.loc[m, "refused"] for m in METHODS}
    return prose.phrase(
        "Inside the world's boundaries, IDK-IT refuses {idkit:.3f} of the queries, vanilla DPO {dpo:.3f}, InBoL "
        "{inbol:.3f} and the control {control:.3f}" + (". Most of InBoL's refusals there are of a few question types: "
                                                       "{types}" if types else "") +
        ". Compare the figure with chapter 0's accuracy by question type: the probe labels a query beyond the "
        "intrinsic boundary when the base model is unsure of it, so the types the base models answered worst are the "
        "ones the trained models are expected to refuse, rightly for that model and wrongly against the world's "
        "boundaries",
        f"Which answerable queries lie inside the world's boundaries is {NOT_KNOWN}, so over-refusal is not measured",
        types=types, **refused)


def hybrid_reading(rates: pd.DataFrame, hybrids: pd.Series) -> str:
    """How often the trained methods give hybrids inside the boundaries (`rates`:
    `evaluation.inside_refusal_rates`), with InBoL's most frequent one (`hybrids`: its hybrid
    responses), or that no method gave any there."""
    shares = {REGISTRY[m].key: rates.loc[m, "hybrid"] for m in METHODS}
    return prose.phrase(
        "In this run no method gave one inside the boundaries" if rates["hybrid"].eq(0).all() else
        "Their share inside the boundaries is {inbol:.3f} after InBoL, {dpo:.3f} after vanilla DPO, {idkit:.3f} "
        "after IDK-IT and {control:.3f} after the control (InBoL's most frequent: {example})",
        f"Which queries lie inside the boundaries is {NOT_KNOWN}; the main table counts hybrids over all queries",
        example=f"“{hybrids.mode().iloc[0]}”" if len(hybrids) else "none", **shares)


def inside_readings(scored: pd.DataFrame, table: pd.DataFrame, intrinsic_truth: bool) -> dict[str, str]:
    """Where the over-refusal comes from, in words: `known_reading`, `inside_reading` and
    `hybrid_reading`, from every scored response (in-domain ones are read) and the main table.
    Without the intrinsic ground truth nothing is measured inside the boundaries."""
    test = scored[scored["split"] == "test"]
    inbol = test[test["method"] == INBOL]
    if intrinsic_truth:
        rates = evaluation.inside_refusal_rates(scored)
        inside = inbol[inbol["region_truth"] == "inside"]
        types = prose.top_shares_phrase((inside["response_type"] == "refusal").groupby(inside["qtype"]).sum())
    else:  # which answerable queries lie inside the boundaries is what a real source does not record
        rates, types = pd.DataFrame(np.nan, index=list(METHODS), columns=["refused", "hybrid"]), None
    hybrids = inbol.loc[inbol["response_type"] == "hybrid", "response"]
    return {"known_reading": known_reading(table, intrinsic_truth), "inside_reading": inside_reading(rates, types),
            "hybrid_reading": hybrid_reading(rates, hybrids)}


def chosen_values(chosen: Mapping[str, dict], selection: pd.DataFrame) -> dict[str, object]:
    """What chapter 3 chose for each trained method (`chosen`, its training.json's): its learning
    rate, steps and, where it tunes it, β (`chosen_<knob>_<key>`); and how far its candidates'
    validation Trust spread over the selection table (`trust_span_<key>`)."""
    spans = selection.groupby("method")["trust"].agg(lambda trust: trust.max() - trust.min())
    values = {}
    for m in TRAINED:
        key = REGISTRY[m].key
        values |= {f"chosen_lr_{key}": chosen[m]["lr"], f"chosen_steps_{key}": chosen[m]["stop_at"]}
        values |= {f"chosen_beta_{key}": chosen[m]["beta"]} if "beta" in REGISTRY[m].tuned else {}
        values[f"trust_span_{key}"] = spans[m]
    return values


def grid_edge_reading(chosen: Mapping[str, dict], idk_lr_values: Sequence[float], pref_lr_values: Sequence[float],
                      beta_values: Sequence[float], names: Mapping[str, str]) -> str:
    """Where chapter 3's choices (`chosen`, its training.json's) sit on the grids searched: IDK-IT's
    learning rate on its own grid, the later stages' on theirs, β where a method tunes it; `names`
    maps each method to its name in prose, in the order said."""
    grids = {"lr": {**dict.fromkeys(names, pref_lr_values), IDKIT: idk_lr_values},
             "beta": dict.fromkeys(names, beta_values)}
    words = {"lr": "learning rate", "beta": "β"}
    return prose.grid_edges_phrase({f"{names[m]}'s {words[key]}": (grids[key][m], chosen[m][key])
                                    for m in names for key in REGISTRY[m].tuned})


def generalisation_reading(spread: pd.DataFrame) -> str:
    """Whether InBoL refuses the held-out construction as often as the ones it was trained on,
    and as often as IDK-IT alone does, from `evaluation.heldout_spread`'s frame."""
    inbol_seen = spread.loc[(INBOL, "construction", "seen"), "mean"]
    inbol_held, inbol_held_sd = spread.loc[(INBOL, "construction", "held out")]
    idkit_held, idkit_held_sd = spread.loc[(IDKIT, "construction", "held out")]
    same = "within one sd over seeds of"  # a gap no wider than that is no gap
    than_trained = prose.difference_phrase(inbol_held, inbol_seen, inbol_held_sd, "higher than", "lower than", same)
    than_inbol = prose.difference_phrase(idkit_held, inbol_held, max(idkit_held_sd, inbol_held_sd),
                                         "more often than", "less often than", same)
    return (f"So InBoL's refusal of the held-out construction is {than_trained} its refusal of the constructions it "
            f"was trained on. IDK-IT alone refuses the held-out construction {idkit_held:.3f} ± {idkit_held_sd:.3f}, "
            f"{than_inbol} InBoL")


def heldout_values(held: pd.DataFrame, scored: pd.DataFrame) -> dict[str, object]:
    """Does the model learn *when* it does not know? InBoL's refusal of seen and held-out
    constructions and never-shown facts, mean and sd over seeds (`held_<kind>_<seen>`,
    `..._sd`), the readings of them, and the held-out constructions' names. `held` is
    `evaluation.heldout_refusal_table`'s frame, `scored` every scored response."""
    spread = evaluation.heldout_spread(held)
    inbol = spread.loc[INBOL]
    values = {}
    for (kind, seen), (mean, sd) in inbol.iterrows():
        name = f"held_{kind.replace(' ', '_')}_{seen.replace(' ', '_')}"
        values |= {name: mean, f"{name}_sd": sd}
    fact_seen, fact_held = inbol.loc[("unseen fact", "seen")], inbol.loc[("unseen fact", "held out")]
    values["unseen_heldout_reading"] = prose.phrase(
        "For never-shown facts it refuses {seen:.3f} ± {seen_sd:.3f} on entities in its training split and "
        "{held:.3f} ± {held_sd:.3f} on held-out entities, {gap}",
        "This source has no never-shown facts, so only the construction is held out",
        seen=fact_seen["mean"], seen_sd=fact_seen["std"], held=fact_held["mean"], held_sd=fact_held["std"],
        gap=prose.difference_phrase(
            fact_held["mean"], fact_seen["mean"], max(fact_held["std"], fact_seen["std"]),
            "more by over one sd over seeds",
            "less by over one sd over seeds: part of it rests on having trained on those very entities",
            "within one sd over seeds: no sign that it memorised which entities to refuse"))
    values["generalisation_reading"] = generalisation_reading(spread)
    constructions = scored.loc[scored["heldout"] & (scored["family"] == "unanswerable"), "construction"]
    values["heldout_constructions"] = " and ".join(sorted(constructions.unique())) or "none in this run"
    return values


def cost_values(c_rows: pd.DataFrame, c_values: Sequence[float]) -> dict[str, object]:
    """Trust against the cost of a wrong answer (`evaluation.trust_by_c`'s frame), in words:
    where InBoL's mean Trust lies above the base model's (`inbol_above_base_<split>`), and how far
    apart the trained methods' means lie at the smallest and largest c of `c_values`."""
    curves = c_rows.groupby(["split", "c", "method"])["trust"].mean().unstack("method")
    values = {f"inbol_above_base_{split}": prose.crossing_phrase(curves.loc[split, INBOL] > curves.loc[split, BASE])
              for split in evaluation.TEST_SPLITS}
    trained = curves.loc["test", list(TRAINED)]
    return values | {"c_low": c_values[0], "c_high": c_values[-1],
                     "trained_span_low": trained.iloc[0].max() - trained.iloc[0].min(),
                     "trained_span_high": trained.iloc[-1].max() - trained.iloc[-1].min()}


def anchor_reading(ablation_runs: pd.DataFrame, reference: pd.Series, spread: float) -> str:
    """InBoL without the anchor against with it: its scores, and which way its refusal of
    unanswerable queries drifts, where a gap within `spread` (the main table's sd over seeds)
    is none."""
    def variant(metric: str) -> float:
        return ablations.value(ablation_runs, "anchor_weight", "0", metric)

    no_anchor, with_anchor = variant("unanswerable_refr"), float(reference["unanswerable_refr"])
    return prose.phrase(
        "Without the anchor: {trust:.3f} (helpfulness {acc:.3f}, hybrids {hybrid:.3f}). It refuses {refr:.3f} of the "
        "unanswerable queries against {reference:.3f} with the anchor: {drift}",
        "The anchor ablation did not run (add anchor to the ablations parameter)", trust=variant("trust"),
        acc=variant("answerable_acc"), hybrid=variant("hybrid"), refr=no_anchor, reference=with_anchor,
        drift=prose.difference_phrase(no_anchor, with_anchor, spread, "without it the model drifts towards refusing",
                                      "without it the model drifts towards answering",
                                      "a difference within the main table's spread over seeds"))


def off_policy_reading(ablation_runs: pd.DataFrame) -> str:
    """InBoL trained on the base model's samples as pairs (off-policy): its Trust and helpfulness."""
    return prose.phrase("With the base model's samples as pairs (off-policy): {trust:.3f} (helpfulness {acc:.3f})",
                        "The off-policy pairs ablation did not run (add pairs to the ablations parameter)",
                        trust=ablations.value(ablation_runs, "pairs", "base samples", "trust"),
                        acc=ablations.value(ablation_runs, "pairs", "base samples", "answerable_acc"))


def ca_term_reading(ablation_runs: pd.DataFrame) -> str:
    """The confidence-aware term's variants by in-domain Trust: each that ran, or that none did."""
    variants = {"with the margin form": ("ca_mode", "margin"),
                "with no term at all (the tuned vanilla DPO)": ("ca_mode", "none (DPO)"),
                "with the label's certainty alone": ("ca_signal", "label"),
                "with the policy's propensity alone": ("ca_signal", "policy")}
    return (prose.known_clauses({words: ablations.value(ablation_runs, ablation, setting, "trust")
                                 for words, (ablation, setting) in variants.items()})
            or "not measured: its ablations did not run (add ca_mode and ca_signal to the ablations parameter)")


def sources_reading(ablation_runs: pd.DataFrame, reference: pd.Series, names: Sequence[str]) -> str:
    """InBoL trained on one boundary's IDK data only: does it still refuse beyond the other?
    `names` are the ablations this run asked for: a missing number is an ablation not run, or
    a refusal of never-shown facts this source cannot measure."""
    return prose.phrase(
        "Trained on extrinsic IDK data only, the model refuses {extrinsic_only:.3f} of never-shown facts (InBoL: "
        "{reference_facts:.3f}); trained on intrinsic data only, it refuses {intrinsic_only:.3f} of the unanswerable "
        "queries (InBoL: {reference_unanswerable:.3f})",
        "The boundary-sources ablation did not run (add sources to the ablations parameter)"
        if "sources" not in names else
        f"The boundary-sources ablation needs the refusal of never-shown facts, which is {NOT_KNOWN}",
        extrinsic_only=ablations.value(ablation_runs, "sources", "extrinsic only", "beyond_intrinsic_refr"),
        reference_facts=float(reference["beyond_intrinsic_refr"]),
        intrinsic_only=ablations.value(ablation_runs, "sources", "intrinsic only", "unanswerable_refr"),
        reference_unanswerable=float(reference["unanswerable_refr"]))


def ablation_readings(ablation_runs: pd.DataFrame, runs: pd.DataFrame, seed: int, table: pd.DataFrame,
                      names: Sequence[str]) -> dict[str, object]:
    """The ablations in words: the reference point (the main table's InBoL on `seed`, the
    ablations' seed: `reference_trust`, `reference_answerable_acc`, `reference_hybrid`) and
    what each ablation of `names` changes against it (`ablations.run_ablations`' frame)."""
    reference = ablations.reference_run(runs, seed)
    spread = measured(table, INBOL, "test", "unanswerable_refr", "std")
    return {**{f"reference_{metric}": float(reference[metric]) for metric in ("trust", "answerable_acc", "hybrid")},
            "anchor_reading": anchor_reading(ablation_runs, reference, spread),
            "off_policy_reading": off_policy_reading(ablation_runs),
            "ca_term_reading": ca_term_reading(ablation_runs),
            "sources_reading": sources_reading(ablation_runs, reference, names)}


def label_noise_readings(curve: pd.DataFrame, gaps: pd.DataFrame, errors: pd.DataFrame) -> dict[str, str]:
    """The label-noise section's sentences (`label_noise.run`'s errors, `label_noise.curve` and
    `label_noise.weight_gaps`): the label sets and their error rates, whether the
    confidence-aware term pays on Trust as the labels get noisier, CA-DPO against vanilla DPO
    at each level on every compared metric (both splits), and whether its weights single out
    the mislabelled pairs; with no study run, why in the first sentence and a short "not measured"
    in the others, so that the paragraph still reads as prose."""
    def rows(metric: str, split: str) -> pd.DataFrame:
        return curve[(curve["metric"] == metric) & (curve["split"] == split)].sort_values("error", ascending=False)

    if curve.empty:  # the first sentence says why, once; the others fit their slots in the prose
        compared = [f"noise_{metric}_{split}" for metric in label_noise.COMPARED for split in evaluation.TEST_SPLITS]
        return {"noise_sets": "none (the study did not run)", "noise_main_sets": "none",
                "noise_levels": "not measured, because the label-noise study did not run here (noise_n_values is "
                                "empty, or the source records no true boundary)",
                "noise_truth": "nor against the ground truth", "noise_pays": "was not tested",
                "noise_pays_ood": "was not tested",
                **dict.fromkeys(["noise_weights_truth", "noise_weights_likelihood", *compared], "not measured"),
                "noise_trust_test": "no label set was trained", "noise_trust_ood": "no label set was trained"}
    sets = list(dict.fromkeys(errors["label_set"]))
    main = list(dict.fromkeys(errors[errors["chapter_two"].astype(bool)]["label_set"]))
    values = {"noise_sets": prose.join([name.removeprefix("N=") for name in sets if name != label_noise.LIKELIHOOD]),
              "noise_main_sets": prose.join(main) or "none of them",
              "noise_levels": prose.noise_levels_phrase(rows("trust", "test")),
              "noise_truth": prose.noise_truth_phrase(errors),
              "noise_pays": prose.noise_pays_phrase(rows("trust", "test")),
              "noise_pays_ood": prose.noise_pays_phrase(rows("trust", "ood"))}
    for metric in label_noise.COMPARED:
        for split in evaluation.TEST_SPLITS:
            values[f"noise_{metric}_{split}"] = prose.noise_verdicts_phrase(rows(metric, split))
    noisiest_first = list(rows("trust", "test")["label_set"])
    for truth, key in (("ground truth", "noise_weights_truth"), ("likelihood label", "noise_weights_likelihood")):
        values[key] = prose.weight_gap_phrase(gaps[gaps["truth"] == truth].set_index("label_set")
                                              .reindex(noisiest_first).dropna(how="all").reset_index())
    return values


def environment_values(stages: Mapping[str, dict], stage: str) -> dict[str, object]:
    """What the reproducibility section says of this run (`environment.read`'s `stages`): how
    many setups its stages ran on (`env_stages`), and `stage`'s machine and libraries (`env_<fact>`)."""
    here, n_setups = stages[stage], environment.setups(stages)
    values = {"env_stages": "every stage ran on one machine with one set of libraries" if n_setups == 1 else
              f"the stages ran on {n_setups} different machines or library sets (see results/environment.json)"}
    values |= {f"env_{key}": here[key] for key in MACHINE_FACTS}
    return values | {f"env_{name}": here["libraries"][name] for name in LIBRARIES}


# The findings a smaller run is set beside the reference's (`against_reference`): the verdicts on
# InBoL and vanilla DPO against each rival, on the four headline metrics and the frontier's area.
REFERENCE_METRICS = {"trust": "Trust", "answerable_acc": "helpfulness", "over_refusal": "over-refusal",
                     "unanswerable_refr": "refusal of unanswerable queries", "aurc": "area under the frontier"}


def against_reference(reference: str, here: str):
    """Which of the `reference` run's findings this run (`here`) reproduces, as Markdown: each
    verdict both runs give on InBoL (and vanilla DPO) against a rival, in-domain, side by side
    (`replication.verdicts`), and a count of those that agree. None without a reference; a note
    when the reference has not been run where this one was."""
    from IPython.display import Markdown

    from .. import replication

    if not reference:
        return None
    name = shown_path(reference)  # as the params file gives it, not this machine's folder
    if not (Path(reference) / "results" / "comparisons.csv").is_file():
        return Markdown(f"*The reference run ({name}) has not been run here, so this chapter cannot say which "
                        "of its findings this run reproduces: `make book` runs it, then `make chapter CH=04` with "
                        "this profile's `PARAMS` compares them.*")
    both = replication.verdicts(reference, here)
    shown = both["metric"].isin(list(REFERENCE_METRICS)) & (both["split"] == "test") & both["method"].isin(
        [REGISTRY[INBOL].label, REGISTRY[DPO].label])
    rows = both[shown].dropna(subset=["verdict_1", "verdict_2"])
    judged = rows[(rows["verdict_1"] != metrics.TOO_FEW) & (rows["verdict_2"] != metrics.TOO_FEW)]
    table = "\n".join(f"| {r.method} against {r.rival} | {REFERENCE_METRICS[r.metric]} "
                      f"| {r.verdict_1} | {r.verdict_2} | {'yes' if r.agree else '**no**'} |"
                      for r in judged.itertuples())
    return Markdown(f"Of the {len(judged)} in-domain verdicts that both this run and the reference run "
                    f"(`{name}`) give on InBoL and vanilla DPO, **{int(judged['agree'].sum())} agree**. "
                    "A verdict that differs is a finding this run cannot reproduce at its size; one that agrees "
                    "is reproduced with a smaller world and model.\n\n"
                    "| comparison | metric | reference | this run | same |\n|---|---|---|---|---|\n" + table)
