"""Run every benchmark of issues 4, 10 and 11 (``make bench``), each in its own process, and sum up the verdicts.

Each script prints its own table; this prints, at the end, one table of every check (PASS/FAIL, benchmark,
check, measured figure, target), the time each benchmark took and the machine's load, optionally writes the
same as Markdown (``--markdown PATH``, the tables of ``BENCHMARKS.md``), and exits 1 if any target was missed
or any benchmark failed to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, fmt, table

#: Module names under ``benchmarks``, in the order they run (cheap and independent first).
BENCHMARKS = (
    "bench_import",
    "bench_trigger_warmup",
    "bench_copy",
    "bench_worker_slots",
    "bench_batch",
    "bench_polling",
    "bench_trigger_start",
    "bench_catalog_plan",
)


def markdown(reports: list[dict[str, Any]], header: str) -> str:
    """The reports as Markdown tables: one per benchmark, then its checks."""
    out = [header, "", "| verdict | benchmark | check | measured | target |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in verdicts(reports)]
    out.append("")
    for report in reports:
        out += [f"### {report['title']}", ""]
        out.append("| " + " | ".join(report["columns"]) + " |")
        out.append("|" + "|".join("---" for _ in report["columns"]) + "|")
        out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in report["rows"]]
        out.append("")
        out += [f"- {note}" for note in report["notes"]]
        for check in report["checks"]:
            verdict = "**PASS**" if check["ok"] else "**FAIL**"
            limit = f"{check['op']} {fmt(check['limit'])}{check['unit']}"
            out.append(f"- {verdict} {check['name']}: {fmt(check['measured'])} ({limit})")
        out.append("")
    return "\n".join(out)


def verdicts(reports: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per check of every report: PASS/FAIL, the benchmark, the check, the figure, the target."""
    return [
        [
            "PASS" if check["ok"] else "FAIL",
            report["module"],
            check["name"],
            check["measured"],
            f"{check['op']} {fmt(check['limit'])}{check['unit']}",
        ]
        for report in reports
        for check in report["checks"]
    ]


def main() -> int:
    """Run the benchmarks named on the command line (default: all)."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run (default: all)")
    args.add_argument("--markdown", help="also write the results as Markdown to this file")
    opts = args.parse_args()
    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    reports: list[dict[str, Any]] = []
    summary: list[tuple[str, float, str]] = []
    failed = False
    for name in opts.names:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            path = Path(handle.name)
        begin = time.perf_counter()
        print(f"\n>>> {name}", flush=True)
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--json", str(path)], cwd=REPO, check=False)
        took = time.perf_counter() - begin
        text = path.read_text() if path.exists() else ""
        path.unlink(missing_ok=True)
        if not text:
            summary.append((name, took, f"ERROR (exit {done.returncode}, no report)"))
            failed = True
            continue
        report = json.loads(text)
        report["module"] = name
        reports.append(report)
        failed = failed or not report["ok"]
        missed = sum(not c["ok"] for c in report["checks"])
        summary.append((name, took, "PASS" if report["ok"] else f"FAIL ({missed} target(s) missed)"))
    total = time.perf_counter() - started
    machine = f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    header = (
        f"`make bench` on {machine}; load average {load:.2f} when it started; took {total:.0f}s in all "
        f"({', '.join(f'{name} {took:.0f}s' for name, took, _ in summary)})."
    )
    print("\n==== summary ====")
    print("\n".join(table(["verdict", "benchmark", "check", "measured", "target"], verdicts(reports), left=3)))
    print()
    for name, took, verdict in summary:
        print(f"{name:20s} {took:6.0f}s  {verdict}")
    print(header)
    if opts.markdown:
        Path(opts.markdown).write_text(markdown(reports, header))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
