"""The package installs: `pip install .` gives a working `dvlt` command, and the README's set-up holds."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import tomllib
from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()


def requirement_name(line: str) -> str:
    """'pillow-heif>=0.16; python_version ...' -> 'pillow-heif' (normalised as pip does)."""
    name = re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_pip_install_into_a_fresh_venv_gives_a_working_dvlt_command(tmp_path):
    # A venv without its own pip/setuptools that sees this test environment's packages (a .pth file), never the
    # base interpreter's: `--system-site-packages` would mean the base's, whose setuptools may be too old.
    venv = tmp_path / "venv"
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # nothing from the checkout
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python, dvlt = venv / "bin" / "python", venv / "bin" / "dvlt"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=clean,
    ).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(site) / "test-environment.pth").write_text("\n".join(ours) + "\n")
    source = tmp_path / "source"  # a copy: building in the checkout would leave a build/ folder behind
    shutil.copytree(ROOT / "dvlt", source / "dvlt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--check-build-dependencies"]
        + [str(source)],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    help_text = subprocess.run(
        [str(dvlt), "reconstruct", "--help"], cwd=elsewhere, env=clean, capture_output=True, text=True
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "--max-frames" in help_text.stdout and "examples, one per input kind" in help_text.stdout
    where = subprocess.run(
        [str(python), "-c", "import dvlt; print(dvlt.__file__)"],
        cwd=elsewhere,
        env=clean,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip().startswith(str(venv)), "dvlt is imported from the installed copy, not the checkout"


def test_requirements_txt_lists_the_runtime_dependencies_of_pyproject():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip()]
    listed = {requirement_name(line) for line in lines if not line.lstrip().startswith("#")}
    assert listed == {requirement_name(dep) for dep in PYPROJECT["project"]["dependencies"]}


def test_requirements_txt_installs_what_every_offered_option_needs():
    """The Space installs from requirements.txt alone: the Rerun download and bundle adjustment it offers need
    rerun-sdk and pycolmap there (without them the download failed and the refinement silently did nothing)."""
    from dvlt.export import OPTIONAL_FORMATS

    lines = (ROOT / "requirements.txt").read_text().splitlines()
    listed = {requirement_name(line) for line in lines if line.strip() and not line.lstrip().startswith("#")}
    needed = {"rerun": "rerun-sdk", "pycolmap": "pycolmap"}  # module -> the package that installs it
    modules = {*OPTIONAL_FORMATS.values(), "pycolmap"}
    assert {needed[module] for module in modules} <= listed


def test_readme_install_command_installs_what_the_python_blocks_import():
    install = re.search(r"```bash\n(pip install [^\n]*python app\.py)\n```", README).group(1)
    assert "-e ." in install and "[test]" not in install  # the runtime install, no test extra
    provided = {requirement_name(dep) for dep in PYPROJECT["project"]["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    for block in re.findall(r"```python\n(.*?)```", README, flags=re.S):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                for top in {name.split(".")[0] for name in names}:
                    if top == "dvlt" or top in sys.stdlib_module_names:
                        continue
                    owners = {requirement_name(d) for d in distributions.get(top, [])}
                    if top == "gradio_client":  # installed with gradio
                        owners.add("gradio")
                    assert owners & provided, f"README imports {top}, which the install command does not provide"


def test_console_script_points_at_the_cli():
    assert PYPROJECT["project"]["scripts"]["dvlt"] == "dvlt.cli:main_entry"


def test_build_requirement_reads_the_license_field():
    """A PEP 639 license string (`license = "Apache-2.0"`) needs setuptools >= 77; older ones reject the build."""
    from packaging.requirements import Requirement

    setuptools = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    if isinstance(PYPROJECT["project"]["license"], str):
        assert not setuptools.specifier.contains("76.9"), setuptools
