"""Benchmark 4: what the provider adds to DAG parsing, on top of what any DAG already imports.

Each measurement is a fresh interpreter that imports ``airflow.sdk`` and the HTTP provider's hook (the
baseline every DAG of this provider pays anyway), then the operator module; the extra time is measured
inside that process, right after the baseline, so the noise of the baseline (about 2 s) does not swamp
the difference (tens of ms). One warm-up process first writes ``.pyc`` files and the Airflow config.
Also shown, not targeted: the batch operator and the sensor, imported after the operator module.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks.common import Check, Report, airflow_env, cpu_load, finish, median, parser, run_child

#: Target of issue 4, in milliseconds.
MAX_EXTRA_MS = 50.0
TARGET = "airflow_provider_gptimage.operators.gptimage"
ALSO = ("airflow_provider_gptimage.operators.batch", "airflow_provider_gptimage.sensors.gptimage")


def child_main() -> None:
    """Import the baseline, then the provider's modules; print the timings as JSON."""
    import importlib
    import json
    import time

    start = time.perf_counter()
    import airflow.providers.http.hooks.http
    import airflow.sdk  # noqa: F401

    base_done = time.perf_counter()
    modules = len(sys.modules)
    timings = {"baseline": base_done - start}
    counts = {}
    last = base_done
    for name in (TARGET, *ALSO):
        importlib.import_module(name)
        now = time.perf_counter()
        timings[name], last = now - last, now
        counts[name], modules = len(sys.modules) - modules, len(sys.modules)
    print(json.dumps({"seconds": timings, "modules": counts}), flush=True)


def main() -> int:
    """Measure in fresh processes; print medians and the verdict."""
    opts = parser(__doc__.splitlines()[0], repeats=5).parse_args()
    home = Path(tempfile.mkdtemp(prefix="gptimage-bench-import-"))
    env = airflow_env(home)
    command = ["-m", "benchmarks.bench_import", "--child"]
    run_child(command, env=env)  # warm-up: .pyc files, airflow.cfg
    runs = [run_child(command, env=env) for _ in range(opts.repeats)]
    base = median(r["seconds"]["baseline"] for r in runs)
    report = Report(
        "Benchmark 4: import cost for DAG parsing (fresh interpreters)",
        ["import", "median ms", "% of baseline", "new modules"],
    )
    report.rows.append(["airflow.sdk + http provider hook (baseline)", base * 1000, 100.0, ""])
    extra = {}
    for name in (TARGET, *ALSO):
        extra[name] = median(r["seconds"][name] for r in runs) * 1000
        label = name.replace("airflow_provider_gptimage.", "+ ") + (" (then)" if name != TARGET else "")
        report.rows.append([label, extra[name], extra[name] / 10 / base, runs[0]["modules"][name]])
    report.checks.append(Check(f"extra import time of {TARGET}", extra[TARGET], "<=", MAX_EXTRA_MS, " ms"))
    report.notes.append(f"median of {opts.repeats} processes after one warm-up; {cpu_load()}")
    return finish(report, opts.json)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child_main()
    else:
        sys.exit(main())
