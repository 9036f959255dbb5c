"""The built wheel and sdist: what they contain, and that Airflow registers the installed wheel.

The wheel is installed into a throwaway venv that reuses this venv's Airflow through a ``.pth`` line
(so nothing is downloaded) but not its editable install of this package: what Airflow finds there is the
wheel's code and metadata only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from airflow_provider_gptimage import __version__
from airflow_provider_gptimage.get_provider_info import get_provider_info
from tests.conftest import REPO

pytestmark = pytest.mark.packaging

DIST = "airflow-provider-gptimage"
PACKAGE = "airflow_provider_gptimage"


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` of the repository: one wheel and one sdist."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


@pytest.fixture(scope="module")
def wheel(dist_dir: Path) -> Path:
    (found,) = dist_dir.glob("*.whl")
    return found


@pytest.fixture(scope="module")
def wheel_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(python, environment) of a new venv holding the wheel and, through a ``.pth`` line, this venv's Airflow.

    Commands run in the venv's ``AIRFLOW_HOME``, away from the repository (whose package ``python -c``
    would otherwise import from the current directory).
    """
    root = tmp_path_factory.mktemp("wheel-venv")
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    subprocess.run(
        [*pip, "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    # Paths added by a .pth line are not scanned for further .pth files: the editable finder stays out.
    (site / "reuse_airflow.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = root / "airflow-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",  # Airflow 3.0 logs INFO lines to stdout, before the JSON
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )
    return python, env


def run_in(python: Path, env: dict[str, str], *args: str) -> str:
    """Run ``python *args`` in the throwaway venv; return its stdout."""
    result = subprocess.run(
        [str(python), *args], env=env, capture_output=True, text=True, timeout=300, cwd=env["AIRFLOW_HOME"]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_wheel_contains_the_package_simulator_and_py_typed(wheel: Path):
    assert wheel.name.startswith(f"airflow_provider_gptimage-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in (
        f"{PACKAGE}/py.typed",
        f"{PACKAGE}/get_provider_info.py",
        f"{PACKAGE}/links.py",
        f"{PACKAGE}/simulator/__main__.py",
        f"{PACKAGE}/simulator/app.py",
    ):
        assert member in names, member
    assert not any(name.startswith("tests/") for name in names)
    metadata = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = airflow_provider_gptimage.get_provider_info:get_provider_info" in entry_points


def test_sdist_contains_sources_and_tests(dist_dir: Path):
    (sdist,) = dist_dir.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", f"{PACKAGE}/py.typed", "tests/conftest.py"} <= names


def test_installed_wheel_is_what_the_venv_imports(wheel_env):
    python, env = wheel_env
    out = run_in(python, env, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)")
    assert Path(out.strip()).is_relative_to(python.parent.parent), out


def test_airflow_lists_the_provider_and_its_connection_type(wheel_env):
    python, env = wheel_env
    listed = json.loads(run_in(python, env, "-m", "airflow", "providers", "list", "-o", "json"))
    providers = {p["package_name"]: p for p in listed}
    assert providers[DIST]["version"] == __version__
    hooks = json.loads(run_in(python, env, "-m", "airflow", "providers", "hooks", "-o", "json"))
    (gptimage,) = [h for h in hooks if h["connection_type"] == "gptimage"]
    assert gptimage["class"] == "airflow_provider_gptimage.hooks.gptimage.GPTImageHook"
    assert gptimage["package_name"] == DIST


def test_provider_info_validates_against_airflows_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_wheel_ships_license_examples_and_docs(wheel: Path):
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    for member in (
        f"{PACKAGE}/example_dags/example_gptimage_quickstart.py",
        f"{PACKAGE}/example_dags/data/products.csv",
        f"{PACKAGE}/docs/index.md",
        f"{PACKAGE}/docs/howto/batch.md",
        f"{PACKAGE}/docs/CHANGELOG.md",
    ):
        assert member in names, member
    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Project-URL: Documentation, /gptimage/docs/" in metadata
    assert "License-Expression: Apache-2.0" in metadata


def test_sdist_ships_the_license_changelog_and_docs(dist_dir: Path):
    (sdist,) = dist_dir.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "docs/index.md", "docs/conf.py"} <= names


def test_a_pip_user_copies_the_examples_into_a_dags_folder(wheel_env, tmp_path: Path):
    python, env = wheel_env
    dags = tmp_path / "dags"
    out = run_in(python, env, "-m", f"{PACKAGE}.examples", "copy", str(dags))
    assert "example_gptimage_quickstart.py" in out
    assert (dags / "gptimage_examples" / "data" / "products.csv").is_file()
    again = subprocess.run(
        [str(python), "-m", f"{PACKAGE}.examples", "copy", str(dags)], env=env, capture_output=True, text=True
    )
    assert again.returncode == 2 and "--force" in again.stderr  # an earlier (maybe edited) copy is kept


def test_the_installed_wheel_renders_its_documentation(wheel_env):
    python, env = wheel_env
    out = run_in(python, env, "-c", f"from {PACKAGE}.ui.docs import render; print(render('howto/sensor.md'))")
    assert "GPTImageTaskSensor(" in out


def test_every_public_class_is_in_the_provider_info():
    info = get_provider_info()
    modules = {
        m for group in ("operators", "sensors", "triggers", "hooks") for e in info[group] for m in e["python-modules"]
    }
    assert {
        f"{PACKAGE}.operators.gptimage",
        f"{PACKAGE}.operators.batch",
        f"{PACKAGE}.operators.gallery",
        f"{PACKAGE}.sensors.gptimage",
        f"{PACKAGE}.triggers.gptimage",
        f"{PACKAGE}.triggers.batch",
        f"{PACKAGE}.hooks.gptimage",
    } <= modules
