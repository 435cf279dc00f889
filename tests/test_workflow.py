"""The publishing workflow (.github/workflows/book.yml): valid, audited, and doing what it says."""
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def test_workflow_passes_zizmor():
    """zizmor validates the workflow against GitHub's schema (a misspelt key or a wrong type fails)
    and audits it: actions pinned by commit, least permissions, no persisted credentials."""
    zizmor = Path(sys.executable).with_name("zizmor")
    lint = subprocess.run([str(zizmor), "--offline", "--persona", "pedantic", "--no-progress", str(WORKFLOW)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_workflow_builds_with_the_readme_command_and_deploys_the_book():
    steps = {name: job["steps"] for name, job in yaml.safe_load(WORKFLOW.read_text())["jobs"].items()}
    assert "make book" in (ROOT / "README.md").read_text()
    assert any(step.get("run") == "make book" for step in steps["build"])
    upload = next(s for s in steps["build"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in steps["deploy"])
