"""The Binder configuration (binder/) and the README's Binder links.

Fast: the binder/ files are what repo2docker expects; every README Binder link
uses the slug in binder/SLUG and points at a notebook that exists.
Slow: repo2docker reads binder/ as intended (prints the Dockerfile, no build);
the notebooks pass nbval in a fresh venv made from binder/requirements.txt only.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = NOTEBOOKS / "sanitize.cfg"

BINDER_LINK = re.compile(r"https://mybinder\.org/v2/gh/([^\s)\]\"'>]+)")


def slug() -> str:
    text = (BINDER / "SLUG").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"binder/SLUG must hold one line, owner/repo; has {lines!r}"
    value = lines[0]
    assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value), value
    return value


def notebook_names() -> list[str]:
    return sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def repo_files() -> list[str]:
    """The files a clone would hold: tracked plus untracked-but-not-ignored."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def copy_repo(dest: Path) -> Path:
    """Copy the working tree (what a clone of it would hold) to dest/repo."""
    repo = dest / "repo"
    for rel in repo_files():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return repo


# --------------------------------------------------------------------- fast


def test_binder_files_are_what_repo2docker_expects():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert m, f"binder/runtime.txt must be python-X.Y, got {runtime!r}"
    assert (int(m[1]), int(m[2])) >= (3, 10), runtime

    reqs = [
        line.strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    # With binder/ present repo2docker ignores the root pyproject.toml, so the
    # requirements must install the repository itself (pip runs from the root).
    assert any(re.fullmatch(r"-e\s+\.(\[[\w,\s-]+\])?", r) for r in reqs), reqs
    editable = next(r for r in reqs if r.startswith("-e"))
    assert "widgets" in editable, f"Binder needs the widgets extra: {editable!r}"
    assert not any(r.split("=")[0].split("[")[0].strip().lower() == "torch" for r in reqs)

    apt = (BINDER / "apt.txt").read_text().split()
    assert "graphviz" in apt, apt

    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    lines = [
        line.strip()
        for line in post.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and lines[0] == "set -euo pipefail", lines[:1]
    assert post.read_text().startswith("#!"), "postBuild needs a shebang line"


def test_readme_binder_links_use_the_slug_and_existing_notebooks():
    readme = (ROOT / "README.md").read_text()
    links = BINDER_LINK.findall(readme)
    assert links, "README.md has no Binder links"
    want = slug()
    present = notebook_names()
    for link in links:
        m = re.fullmatch(r"([^/]+/[^/]+)/HEAD\?urlpath=lab/tree/notebooks/([\w.-]+\.ipynb)", link)
        assert m, f"Binder link not of the form SLUG/HEAD?urlpath=lab/tree/notebooks/NAME.ipynb: {link}"
        assert m[1] == want, f"Binder link uses {m[1]!r}, binder/SLUG says {want!r}"
        assert m[2] in present, f"README links notebooks/{m[2]}, which does not exist"
    # Every lesson notebook has its link.
    linked = {re.search(r"notebooks/([\w.-]+\.ipynb)$", link)[1] for link in links}
    assert set(present) <= linked, f"notebooks without a README Binder link: {sorted(set(present) - linked)}"


# --------------------------------------------------------------------- slow


@pytest.mark.slow
def test_repo2docker_reads_the_binder_config(tmp_path):
    if importlib.util.find_spec("repo2docker") is None:
        pytest.skip("repo2docker is not importable (pip install jupyter-repo2docker, in the dev extra)")
    repo = copy_repo(tmp_path)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "snapshot"], cwd=repo, check=True)

    proc = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", "--no-run", "."],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "python=3.12" in out, out
    assert re.search(r"apt-get install[^\n]*\bgraphviz\b", out), out
    copy_all = out.find("COPY --chown=0:0 src/ ${REPO_DIR}/")
    pip_step = out.find('pip install --no-cache-dir -r "binder/requirements.txt"')
    assert pip_step != -1, "no requirements step in the Dockerfile:\n" + out
    # `-e .` needs the whole repository in place before pip runs.
    assert copy_all != -1 and copy_all < pip_step, out
    assert "./binder/postBuild" in out, out


@pytest.mark.slow
def test_notebooks_pass_in_binder_equivalent_env(tmp_path):
    names = notebook_names()
    assert names, "no notebooks in notebooks/: the Binder environment has nothing to run"
    repo = copy_repo(tmp_path)
    env_dir = tmp_path / "binder-venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    py = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"

    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONHASHSEED"] = "0"
    # pip runs from the repository root, as on Binder.
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q",
         "-r", "binder/requirements.txt", "pytest", "nbval"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run(
        [str(py), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert check.stdout.strip() == "True", "torch must not reach the Binder environment"

    run = subprocess.run(
        [str(py), "-m", "pytest", "--nbval", "notebooks/", "-p", "no:cacheprovider",
         "--nbval-current-env", "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-q"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=3600,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert re.search(r"\b\d+ passed\b", run.stdout), run.stdout
