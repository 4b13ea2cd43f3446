"""How soon `rotation run nightly` shows its first line, on a tiny DuckDB file.

    .venv/bin/python bench/first_line.py [--rotation .venv/bin/rotation] [--rounds 3]

Prints, per round, the seconds from the command's start to its first line on stderr (the
run's header, or before 2cbadba the first stage), to its end, and the seconds of `rotation
--help`; and beside them the anchor measured in the same run: `python -c pass` of this
interpreter (what any Python command costs on this machine at this moment). `--rotation`
takes another checkout's command (a script running its `flows.cli:main` with that checkout
first on PYTHONPATH), to compare two versions on one machine in one sitting.
A warm-up run first creates Prefect's local database (its first start migrates it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profiles import machine

ROOT = Path(__file__).resolve().parent.parent
RUN_DATE = "2026-11-30"


def first_line_seconds(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Return (seconds to the first stderr line, seconds to the end, that line)."""
    start = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode(errors="replace").rstrip()
        first = time.perf_counter() - start
        proc.stderr.read()
        if proc.wait() not in (0, 3):
            raise SystemExit(f"{' '.join(argv)} failed: {line}")
    return first, time.perf_counter() - start, line


def seconds(argv: list[str], env: dict[str, str]) -> float:
    """Return the seconds a command takes, its output discarded."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotation", type=Path, default=ROOT / ".venv" / "bin" / "rotation")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rotation = str(args.rotation)
    with tempfile.TemporaryDirectory(prefix="rotation-first-line-") as work:
        env = os.environ | {"PREFECT_HOME": f"{work}/prefect"}
        env.pop("ROTATION_DATABASE_URL", None)
        url = f"duckdb:{work}/tiny.duckdb"
        seconds([rotation, "db", "migrate", "--database", url], env)
        sizes = ["--users", "50", "--tracks", "500", "--days", "10", "--end", "2026-12-01"]
        seconds([rotation, "-q", "generate", "--database", url, *sizes], env)
        nightly = [rotation, "run", "nightly", "--database", url, "--date", RUN_DATE]
        first_line_seconds(nightly, env)  # warm-up: Prefect's database, the OS file cache
        rounds = []
        for _ in range(args.rounds):
            first, total, line = first_line_seconds(nightly, env)
            rounds.append(
                {
                    "first_line_s": round(first, 2),
                    "total_s": round(total, 2),
                    "help_s": round(seconds([rotation, "--help"], env), 2),
                    "python_s": round(seconds([sys.executable, "-c", "pass"], env), 3),
                    "first_line": line[:80],
                }
            )
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k != "first_line"}
    python_s = median["python_s"]
    print(
        json.dumps(
            {
                "machine": machine(),
                "rotation": rotation,
                "rounds": rounds,
                "median": median,
                "first_line_per_python_start": round(median["first_line_s"] / python_s, 1),
                "help_per_python_start": round(median["help_s"] / python_s, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
