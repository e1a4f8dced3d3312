"""`make bench` (bench/all.py): every benchmark run, one table of figures against targets, one
JSON line last, a non-zero exit only when a benchmark fails to run. Checked with small stand-in
benchmarks, not the real ones (those take minutes and are not timed in tests)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from tests.support import ROOT

FAST = '''
import json, sys
sys.path.insert(0, {bench!r})
from _common import target
quick = "--quick" in sys.argv
print("some progress")
print(json.dumps({{"quick": quick, "targets": [
    target("rows/s", 2500.0, at_least=1900, unit="rows/s"),
    target("worker RSS", 130.5, at_most=120, unit="MB")]}}))
'''
BROKEN = "import sys\nprint('about to fail')\nsys.exit(3)\n"
SILENT = "print('no JSON here')\n"


def _run(folder, *args):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'bench')!r})
        from pathlib import Path
        import all as bench_all
        sys.exit(bench_all.main({list(args)!r}, folder=Path({str(folder)!r})))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"BENCH_DATABASE_URL": "postgresql://unused/", "PATH": "/usr/bin:/bin"})


def test_every_benchmark_runs_quick_and_the_table_says_what_holds(tmp_path):
    (tmp_path / "fast.py").write_text(FAST.format(bench=str(ROOT / "bench")))
    (tmp_path / "_helper.py").write_text("raise SystemExit('not a benchmark')\n")
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "=== fast" in out and "some progress" in out and "_helper" not in out
    table = out[out.index("benchmark  "):]
    assert "rows/s" in table and "2,500 rows/s" in table and ">= 1900 rows/s" in table and "yes" in table
    assert "worker RSS" in table and "130 MB" in table.replace("130.5", "130") and "<= 120 MB" in table and "NO" in table
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["quick"] is True and summary["ran"] is True and summary["holds"] is False
    assert summary["missed"] == ["fast: worker RSS"]
    assert summary["benchmarks"]["fast"]["result"]["quick"] is True  # it was asked for its quick size


def test_a_benchmark_that_fails_or_prints_no_json_fails_the_run(tmp_path):
    (tmp_path / "fast.py").write_text(FAST.format(bench=str(ROOT / "bench")))
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "silent.py").write_text(SILENT)
    done = _run(tmp_path)
    assert done.returncode == 1
    assert re.search(r"^broken\s+FAILED \(exit status 3\)", done.stdout, re.M)
    assert re.search(r"^silent\s+FAILED \(exit status 0\)", done.stdout, re.M)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ran"] is False and summary["benchmarks"]["fast"]["ok"] is True


def test_only_runs_the_named_ones_at_full_size(tmp_path):
    (tmp_path / "fast.py").write_text(FAST.format(bench=str(ROOT / "bench")))
    (tmp_path / "broken.py").write_text(BROKEN)
    done = _run(tmp_path, "--only", "fast", "--full")
    assert done.returncode == 0
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(summary["benchmarks"]) == ["fast"] and summary["benchmarks"]["fast"]["result"]["quick"] is False
