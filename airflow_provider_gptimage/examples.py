"""The example DAGs, shipped in the package: ``python -m airflow_provider_gptimage.examples copy DAGS_FOLDER``.

The wheel carries ``example_dags/`` (the DAG files and their ``data/``) inside the package; a source checkout
finds them at the repository's top level. ``copy`` puts them in ``<DAGS_FOLDER>/gptimage_examples/``, where
Airflow's DAG processor picks them up; ``list`` names them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

#: The folder created in the DAGs folder.
TARGET = "gptimage_examples"


def examples_folder() -> Path:
    """The shipped examples: inside the installed package, else the source checkout's ``example_dags/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "example_dags", package.parent / "example_dags"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the example DAGs are not installed with this package (a wheel ships them)")


def copy_examples(dags_folder: Path, *, force: bool = False) -> list[Path]:
    """Copy the example DAGs and their data into ``dags_folder/gptimage_examples``; return the DAG files.

    :param force: replace a copy made earlier (else refuse, so an edited copy is never overwritten).
    :raises FileExistsError: the target exists and ``force`` is false.
    """
    source, target = examples_folder(), dags_folder / TARGET
    if target.exists():
        if not force:
            raise FileExistsError(f"{target} exists; pass --force to replace it")
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return sorted(target.glob("*.py"))


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_gptimage.examples", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy the example DAGs into a DAGs folder")
    copy.add_argument("dags_folder", type=Path, help="your DAGs folder ([core] dags_folder)")
    copy.add_argument("--force", action="store_true", help="replace an earlier copy")
    commands.add_parser("list", help="name the example DAG files")
    args = parser.parse_args(argv)
    if args.command == "list":
        for path in sorted(examples_folder().glob("*.py")):
            print(path.name)
        return 0
    try:
        written = copy_examples(args.dags_folder, force=args.force)
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"copied {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
