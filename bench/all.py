"""Every benchmark at once, at a quick size, with one table of figures against their targets.

    python bench/all.py [--full] [--only NAME ...] [--database-url URL]     (make bench)

Runs each `bench/*.py` (not this file, not `_*.py`) in its own process with `--quick` (or at
its full size with `--full`), on PostgreSQL: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else
the local server's `portico_bench` database (made if missing). Each benchmark's own output
goes by as it runs; then one table of every figure beside its target and whether it holds,
and, last, one JSON object with all of it.

The contract a benchmark keeps to be part of this: it accepts `--quick` (a size that runs in
about a minute or two), and the last line it prints is one JSON object; figures with a target
go in its "targets" list as `_common.target()` makes them ({"name", "value", "unit",
"target", "holds"}). The exit status is non-zero when a benchmark fails to run; a figure that
misses its target is reported, not an error (the figures vary with the machine).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"


def scripts(folder: Path = HERE) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_") and p.name != "all.py")


def database_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    import psycopg

    with psycopg.connect(f"{DEFAULT_SERVER}/postgres", autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = 'portico_bench'").fetchone() is None:
            connection.execute("CREATE DATABASE portico_bench")
    return f"{DEFAULT_SERVER}/portico_bench"


def last_json(output: str) -> dict | None:
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line:
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def run_one(script: Path, *, quick: bool, env: dict) -> dict:
    """Run a benchmark, echoing its output; its JSON, time and whether it ran."""
    print(f"=== {script.stem}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(script), *(["--quick"] if quick else [])], env=env,
                               cwd=script.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line)
    process.wait()
    result = last_json("".join(lines))
    ok = process.returncode == 0 and result is not None
    return {"ok": ok, "exit_status": process.returncode, "seconds": round(time.monotonic() - started, 1),
            "targets": (result or {}).get("targets", []), "result": result}


def table(runs: dict[str, dict]) -> str:
    rows = [("benchmark", "figure", "value", "target", "holds")]
    for name, run in runs.items():
        if not run["ok"]:
            rows.append((name, f"FAILED (exit status {run['exit_status']})", "", "", "no"))
            continue
        if not run["targets"]:
            rows.append((name, "(no targets)", "", "", ""))
        for t in run["targets"]:
            value = t["value"]
            shown = f"{value:,.3g}" if isinstance(value, float) and abs(value) < 10 else (
                f"{value:,.0f}" if isinstance(value, (int, float)) else str(value))
            rows.append((name, t["name"], f"{shown} {t.get('unit', '')}".strip(), str(t["target"]),
                         "yes" if t["holds"] else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None, folder: Path = HERE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="each benchmark at its full size (long)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="just these benchmarks (file names without .py)")
    parser.add_argument("--database-url", help="PostgreSQL to run on (default: see above)")
    args = parser.parse_args(argv)
    chosen = [s for s in scripts(folder) if not args.only or s.stem in args.only]
    env = {**os.environ, "BENCH_DATABASE_URL": args.database_url or database_url()}
    started = time.monotonic()
    runs = {script.stem: run_one(script, quick=not args.full, env=env) for script in chosen}
    print()
    print(table(runs))
    every = [t for run in runs.values() for t in run["targets"]]
    summary = {"quick": not args.full, "seconds": round(time.monotonic() - started, 1),
               "ran": all(r["ok"] for r in runs.values()), "holds": all(t["holds"] for t in every),
               "missed": [f"{name}: {t['name']}" for name, run in runs.items() for t in run["targets"] if not t["holds"]],
               "benchmarks": runs}
    print(f"\n{sum(t['holds'] for t in every)} of {len(every)} figures hold their targets; "
          f"{sum(not r['ok'] for r in runs.values())} benchmark(s) failed to run; {summary['seconds']} s in all.")
    print(json.dumps(summary))
    return 0 if summary["ran"] else 1


if __name__ == "__main__":
    sys.exit(main())
