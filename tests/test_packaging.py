"""The distribution installs and imports as a user gets it, and never shadows the standard library."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"platform": "fedray.platform", "clients": "fedray.clients", "server": "fedray.server",
           "tasks": "fedray.tasks", "cluster": "fedray.cluster"}  # fmt: skip


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            rel = path.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]))
    return found


def test_platform_folder_is_not_a_regular_package():
    assert not (REPO / "platform" / "__init__.py").exists()
    code = "import platform, torch; print(platform.system())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr  # cwd is on sys.path with -c


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert _packages_on_disk() == listed


def test_built_wheel_imports_every_module_without_the_source_tree(tmp_path):
    source = tmp_path / "source"  # a copy, so that no stale build/ folder of the checkout can leak into the wheel
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".venv", "build", "runs", ".git", "__pycache__", ".*_cache", "*.egg-info"),
    )  # named exactly: a module such as silo_cache.py must reach the wheel
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("fedray-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
        modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in zf.namelist() if n.endswith(".py"))
    assert "fedray.platform.modules.classifier" in modules and "fedray.cluster.cli" in modules
    code = (
        "import sys, importlib\n"
        # drop the editable install's finder so that only the unpacked wheel can provide fedray
        "sys.meta_path = [f for f in sys.meta_path if not type(f).__module__.startswith('__editable__')]\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        f"for m in {modules!r}:\n"
        "    mod = importlib.import_module(m)\n"
        f"    assert mod.__file__.startswith({str(site)!r}), (m, mod.__file__)\n"
        "from fedray.cluster.cli import main\n"
        "sys.exit(main(['list']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ""})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("federated")
