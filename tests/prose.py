"""Checks that a rendered book's prose does not contradict its own glued numbers.

A sentence whose truth depends on the run is glued as a whole (the phrase is chosen in code from
the numbers) or worded to hold for any outcome. These rules catch the cases a machine can
check: a phrase on the page that the glued numbers make false. Used by the smoke test on the
book it builds, where tiny models make unusual outcomes likely.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from inbol_utils.book import prose
from inbol_utils.book.prose import glued_values
from inbol_utils import metrics


def page_text(page: Path) -> str:
    """The visible text of a rendered HTML page, whitespace folded."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def verdict_contradictions(glue: dict) -> list[str]:
    """Each Trust verdict chapter 4 glues (`verdict_<name>`) that its glued interval and seed
    count (`n_seeds`) do not give by `metrics.verdict`: a real verdict from fewer than
    `metrics.MIN_REPLICATES` seeds, or `metrics.TOO_FEW` from enough of them, is flagged."""
    problems, n = [], glue["n_seeds"]
    for key, said in glue.items():
        if not key.startswith("verdict_"):
            continue
        name = key.removeprefix("verdict_")
        low, high = glue[f"low_{name}"], glue[f"high_{name}"]
        expected = metrics.verdict(low, high, n)
        if said != expected:
            problems.append(f"chapter 4 says {name} {said!r}, but its interval [{low:.3f}, {high:.3f}] from {n} "
                            f"seeds says {expected!r}")
    return problems


def contradictions(executed: Path, pages: Path, book_pages: Path) -> list[str]:
    """Each finding a page states that its glued numbers contradict, as a sentence. `executed`
    holds the executed notebooks, `pages` their rendered HTML and `book_pages` the intro's."""
    problems = []
    chapter = {stem: (glued_values(executed / f"{stem}.ipynb"),
                      page_text(pages / f"{stem}.html"))
               for stem in ("00_world_and_base_model", "01_boundary_definition", "03_training", "04_evaluation")}

    glue, text = chapter["00_world_and_base_model"]
    if glue["unanswerable_refusal_rate"] > 0 and "answer everything" in text:
        problems.append("chapter 0 says the base models answer everything, but they refuse "
                        f"{glue['unanswerable_refusal_rate']:.1f}% of unanswerable queries")
    unseen = re.search(r"of those about facts they never saw, ([\d.]+) ?%", text)
    if unseen and float(unseen[1]) > 0 and "not even a lucky guess finds them" in text:
        problems.append(f"chapter 0 says no guess finds a never-shown fact's city, but the base models answer "
                        f"{unseen[1]}% of them correctly")

    glue, text = chapter["01_boundary_definition"]
    for phrase in ("track each other closely", "agree, but loosely", "barely agree", "cannot be compared"):
        if f"they {phrase}" in text and not prose.correlation_phrase(glue["conf_corr"]).startswith(phrase):
            problems.append(f"chapter 1 says the signals {phrase!r} at correlation {glue['conf_corr']:.3f}")
    unseen = re.search(r"([\d.]+) ?% of the queries about never-shown facts are labelled beyond", text)
    if unseen and float(unseen[1]) < 100 and "cannot stumble on them" in text:
        problems.append(f"chapter 1 says the model cannot stumble on never-shown facts, but only {unseen[1]}% of "
                        "them are labelled beyond the intrinsic boundary")
    on_grid = any(abs(glue["tau_used"] - t / 10) < 1e-9 for t in range(1, 11))  # the sweep's τ values
    if on_grid and glue["agreement_used"] > glue["agreement_best"]:
        problems.append(f"chapter 1 says agreement is highest ({glue['agreement_best']:.3f}) at "
                        f"τ = {glue['agreement_best_tau']}, but at τ = {glue['tau_used']} it is {glue['agreement_used']:.3f}")

    glue, text = chapter["03_training"]
    reading = glue["checkpoint_reading"]  # the validation probe always scores a schedule's last step
    for key, name, steps in (("idkit", "IDK-IT", "idk_steps"), ("dpo", "vanilla DPO", "pref_steps"),
                             ("inbol", "CA-DPO", "pref_steps"), ("control", "the control", "pref_steps")):
        at_end = glue[f"chosen_steps_{key}"] == glue[steps]
        said = reading.startswith("every method") or (
            not reading.startswith("no method") and name in reading.split(" chose the last")[0])
        if at_end != said:
            problems.append(f"chapter 3 says {reading!r}, but {name} stopped at step "
                            f"{glue[f'chosen_steps_{key}']} of {glue[steps]}")
    if reading not in text:
        problems.append("chapter 3 does not state which methods chose the last checkpoint")

    glue, text = chapter["04_evaluation"]
    problems += verdict_contradictions(glue)
    beats_base = all(glue[f"verdict_inbol_vs_base_{s}"] == "beats" for s in ("test", "ood"))
    if (glue["paper_claim_base"] == "agrees with") != beats_base:
        problems.append("chapter 4's agreement with the paper's first claim contradicts its verdicts")
    if glue["inbol_test_hybrid"] == 0 and "most frequent: “" in glue["hybrid_reading"]:
        problems.append("chapter 4 quotes a hybrid of InBoL, but InBoL's hybrid share is 0")

    intro = page_text(book_pages / "intro.html")
    for split in ("test", "ood"):
        if glue[f"headline_verdict_{split}"] not in intro:
            problems.append(f"the introduction does not state chapter 4's {split} verdict")
    return problems
