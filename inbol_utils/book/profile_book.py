"""The book of one profile: its table of contents and its copy of the introduction.

    python -m inbol_utils.book.profile_book params/smoke.yaml   # what `make book PARAMS=...` runs

_toc.yml is the default profile's book: the study's chapters from book/executed/default/, other
profiles' parts (the easy-VQA part) and the reference pages. Another profile's book keeps the
study part, read from its own executed folder, with the chapters of the stages its parameter
file runs (easy-VQA's stops at chapter 5), and the reference pages (`profile_toc`). Its root
is a copy of the introduction beside its chapters (`intro_copy`): the introduction glues
chapter 4's results, and a copy glues this profile's own. `write` writes both where the
Makefile's build reads them.
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Sequence

import yaml

from ..runner.parameters import PROJECT_ROOT
from ..runner.pipeline import load_params, profile_name

DEFAULT = "default"
STUDY = f"book/executed/{DEFAULT}/"  # the study's chapters in _toc.yml
CHAPTERS = STUDY.removeprefix("book/")  # the same folder as book/intro.md spells it
DOC_REFERENCE = re.compile(r"\{doc\}`(?:(?P<title>[^`<]*)<(?P<titled>[^`>]+)>|(?P<target>[^`]+))`")
# A glued value's notebook: the {glue} roles' `notebook::name` and the {glue} directive's :doc: option.
GLUE_NOTEBOOK = re.compile(r"(?P<lead>\{glue(?::\w+)?\}`|^:doc:[ \t]+)" + re.escape(CHAPTERS),
                           re.MULTILINE)


def profile_toc(toc: dict, profile: str, stems: Sequence[str]) -> dict:
    """The table of contents of one profile's book, from _toc.yml (the default book): the study
    part read from the profile's executed folder, with the chapters of the profile's stages
    (`stems`), the pages outside any executed folder, no other profile's part; rooted at the
    profile's copy of the introduction unless it is the default profile."""
    def files(part: dict) -> list[str]:
        return [c["file"] for c in part["chapters"]] + [s["file"] for c in part["chapters"]
                                                       for s in c.get("sections", [])]
    parts = []
    for part in toc["parts"]:
        if all(f.startswith(STUDY) for f in files(part)):
            parts.append({**part, "chapters": [{"file": c["file"].replace(STUDY, f"book/executed/{profile}/")}
                                               for c in part["chapters"]
                                               if c["file"].removeprefix(STUDY) in stems]})
        elif not any(f.startswith("book/executed/") for f in files(part)):
            parts.append(part)
    root = toc["root"] if profile == DEFAULT else f"book/executed/{profile}/intro"
    return {**toc, "root": root, "parts": parts}


def intro_copy(text: str) -> str:
    """book/intro.md as a page of book/executed/<profile>/: what it glues and links from the
    default profile's chapters comes from the copy's neighbours, and its links to the book's
    other pages climb the two folders."""
    def relink(match: re.Match) -> str:
        target = match["titled"] or match["target"]
        target = target.removeprefix(CHAPTERS) if target.startswith(CHAPTERS) else f"../../{target}"
        return f"{{doc}}`{match['title']}<{target}>`" if match["titled"] else f"{{doc}}`{target}`"

    return GLUE_NOTEBOOK.sub(r"\g<lead>", DOC_REFERENCE.sub(relink, text))


def write(params_path: str | os.PathLike, root: Path = PROJECT_ROOT) -> Path:
    """Write the table of contents of the profile `params_path` runs to _build/<profile>/_toc.yml
    and, for a profile other than the default, its introduction to
    book/executed/<profile>/intro.md; returns the toc's path."""
    profile = profile_name(params_path)
    stems = [stage["stem"] for stage in load_params(params_path)["stages"]]
    toc = profile_toc(yaml.safe_load((root / "_toc.yml").read_text()), profile, stems)
    path = root / "_build" / profile / "_toc.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(toc, sort_keys=False))
    if profile != DEFAULT:
        intro = root / f"{toc['root']}.md"
        intro.parent.mkdir(parents=True, exist_ok=True)
        intro.write_text(intro_copy((root / "book" / "intro.md").read_text()))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.book.profile_book", description=__doc__.split("\n")[0])
    parser.add_argument("params", help="the profile's parameter file, e.g. params/smoke.yaml (the profile smoke)")
    print(write(parser.parse_args(argv).params))


if __name__ == "__main__":
    main()
