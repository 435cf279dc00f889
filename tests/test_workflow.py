"""The publishing workflow (.github/workflows/book.yml): valid, audited, and doing what it says;
and the commands the user's guides (README.md, the book's "Running the study" page) give exist."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
GUIDES = [ROOT / "README.md", ROOT / "book" / "running.md", ROOT / "book" / "parameters.md",
          ROOT / "book" / "exercises.md"]
RUNNING = "book/running"  # the book's "Running the study" page, in _toc.yml's Reference part


def test_workflow_passes_zizmor():
    """zizmor validates the workflow against GitHub's schema (a misspelt key or a wrong type fails)
    and audits it: actions pinned by commit, least permissions, no persisted credentials."""
    zizmor = Path(sys.executable).with_name("zizmor")
    lint = subprocess.run([str(zizmor), "--offline", "--persona", "pedantic", "--no-progress", str(WORKFLOW)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_workflow_builds_with_the_readme_command_and_deploys_the_book():
    steps = {name: job["steps"] for name, job in yaml.safe_load(WORKFLOW.read_text())["jobs"].items()}
    assert any(step.get("run") == "make book" for step in steps["build"])
    upload = next(s for s in steps["build"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in steps["deploy"])


def code_in(text: str) -> str:
    """The code of a Markdown text: its fenced blocks and inline code spans, where commands are
    written (so that "make sure" in prose is not read as a target)."""
    fenced = re.findall(r"^(`{3,})[^\n]*\n(.*?)^\1", text, re.M | re.S)
    rest = re.sub(r"^(`{3,})[^\n]*\n.*?^\1", "", text, flags=re.M | re.S)
    return "\n".join([block for _, block in fenced] + re.findall(r"`([^`\n]+)`", rest))


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


def module_file(name: str) -> Path | None:
    """The file of the module `name` (a.b.c) in the repository, a package's __init__.py included."""
    path = ROOT.joinpath(*name.split("."))
    return next((p for p in (path.with_suffix(".py"), path / "__init__.py") if p.is_file()), None)


def test_code_in_reads_blocks_and_spans_not_prose():
    text = "To make sure, run `make book`.\n```bash\nmake test  # and\n```\nWe make things."
    assert re.findall(r"\bmake ([a-z][\w-]*)", code_in(text)) == ["test", "book"]


def test_the_guides_commands_exist():
    """Every `make TARGET` the guides name is a target of the Makefile, every `python -m MODULE`
    (or `-m MODULE` after accelerate) is a module that runs as a program, and every
    `inbol_utils.X` they name is a module of the package: a guide that still names a module the
    package no longer has (after a reorganisation) fails here."""
    targets, problems = makefile_targets(), []
    assert {"book", "test", "test-fast", "bench", "bench-worlds", "clean"} <= targets
    for guide in GUIDES:
        code = code_in(guide.read_text())
        named = set(re.findall(r"\bmake ([a-z][\w-]*)", code))
        assert {"book", "test"} <= named or guide.name != "README.md", "the README's two commands"
        problems += [f"{guide.name}: make {t} is not a Makefile target" for t in sorted(named - targets)]
        for module in sorted(set(re.findall(r"-m (inbol_utils(?:\.\w+)+)", code))):
            path = module_file(module)
            if path is None or '__name__ == "__main__"' not in path.read_text():
                problems.append(f"{guide.name}: python -m {module} runs no program")
        for module in sorted(set(re.findall(r"\binbol_utils(?:\.[a-z_]\w*)+", code))):
            if module_file(module) is None:
                problems.append(f"{guide.name}: {module} is not a module of the package")
    assert not problems, "\n".join(problems)


def test_every_book_has_the_running_page():
    """The README sends readers to the book's "Running the study" page: it is in the default
    book's Reference part and in another profile's book, whose table of contents keeps that part."""
    from inbol_utils.book.profile_book import profile_toc

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    reference = next(part for part in toc["parts"] if part["caption"] == "Reference")
    assert reference["chapters"][0] == {"file": RUNNING}
    assert (ROOT / f"{RUNNING}.md").read_text().startswith("# Running the study\n")
    for profile in ("default", "quick"):
        files = [c["file"] for part in profile_toc(toc, profile, ["00_world_and_base_model"])["parts"]
                 for c in part["chapters"]]
        assert RUNNING in files, profile


def test_make_lab_serves_the_pinned_jupyterlab_from_the_venv():
    """`make lab` runs .venv's own JupyterLab, the version requirements.txt pins (so the
    notebooks' "python3" kernel is .venv's Python)."""
    pinned = re.search(r"^jupyterlab==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and f"jupyterlab=={pinned[1]}" in (ROOT / "constraints.txt").read_text().splitlines()
    dry = subprocess.run(["make", "-s", "--no-print-directory", "-n", "-o", ".venv/.installed", "lab"], cwd=ROOT,
                         capture_output=True, text=True)
    assert dry.stdout.strip() == ".venv/bin/jupyter lab", dry.stdout + dry.stderr
    lab = Path(sys.executable).with_name("jupyter-lab")
    if lab.exists():  # in a .venv made from this requirements.txt
        version = subprocess.run([str(lab), "--version"], capture_output=True, text=True).stdout.strip()
        assert version == pinned[1]


def test_the_parameter_map_names_every_parameter():
    """book/parameters.md: one table of every parameter a notebook takes (the schemas of
    `inbol_utils.runner.parameters`), so that a new parameter cannot be left off it."""
    from inbol_utils.runner.parameters import SCHEMAS

    text = (ROOT / "book" / "parameters.md").read_text()
    named = set(re.findall(r"^\| (.+?) \|", text, re.M))
    cells = " ".join(named)
    missing = sorted({p for schema in SCHEMAS.values() for p in schema.params} - set(re.findall(r"`(\w+)`", cells)))
    assert not missing, f"book/parameters.md does not name {missing}"
    assert "book/parameters" in (ROOT / "_toc.yml").read_text()


def reproduce_command(notebook: Path) -> str:
    """The command a chapter's "Reproduce this chapter" box gives."""
    import nbformat

    text = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    box = text[text.index("{admonition} Reproduce this chapter"):]
    return re.search(r"^    (make chapter CH=\d\d)$", box, re.M).group(1)


def test_every_reproduce_box_reruns_its_own_chapter():
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert reproduce_command(notebook) == f"make chapter CH={notebook.name[:2]}", notebook.name


@pytest.mark.slow
def test_a_reproduce_box_runs_as_printed(tmp_path):
    """Chapter 0's box, run as printed with the PARAMS it tells a reader to add (a copy of the smoke
    profile, under a profile name of its own): every chapter runs, from 00 on, and that profile's
    book is built. Its executed chapters and book land in the repository's folders for profiles
    (book/executed/<profile>/, _build/<profile>/), removed afterwards."""
    profile = f"pytest-chapter-{os.getpid()}"
    params = tmp_path / f"{profile}.yaml"
    params.write_text((ROOT / "params" / "smoke.yaml").read_text()
                      .replace("artifacts: data/smoke", f"artifacts: {tmp_path / 'artifacts'}")
                      .replace("ablations: [pairs, anchor, ca_signal, ca_mode, tau, sources]", "ablations: []"))
    command = reproduce_command(ROOT / "notebooks" / "00_world_and_base_model.ipynb") + f" PARAMS={params}"
    try:
        run = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert run.stdout.count(": done in ") == 7  # every stage ran, from chapter 0 on
        html = ROOT / "_build" / profile / "_build" / "html"
        assert (html / "book" / "executed" / profile / "00_world_and_base_model.html").is_file()
    finally:
        shutil.rmtree(ROOT / "book" / "executed" / profile, ignore_errors=True)
        shutil.rmtree(ROOT / "_build" / profile, ignore_errors=True)
