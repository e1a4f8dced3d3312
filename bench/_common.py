"""What every benchmark here shares: the database to run on, the app, signing in, timing."""
from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-lantern-harbour-7"
SMALL_TENANTS = 99


def add_database_arguments(parser) -> None:
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--explain", action="store_true", help="print the bare queries' plans (PostgreSQL)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--keep", metavar="NAME", help="PostgreSQL: seed into the schema portico_bench_NAME and keep it;"
                        " a later run with the same NAME and size reuses the data instead of seeding again")
    parser.add_argument("--profile", action="store_true",
                        help="print where the app's time goes for each page (cProfile, top functions)")


def databases(database_url: str | None, stack: ExitStack, *, keep: str | None = None) -> tuple[str, str]:
    """(the app's URL, the seeding URL). On PostgreSQL the app uses a throwaway schema owned by an
    ordinary role, so row-level security applies as in production; seeding goes through the
    administrator into the same schema, because PostgreSQL refuses COPY to a role bound by RLS
    and the benchmarks measure reading, not loading. Otherwise a temporary SQLite file."""
    from core.dbtools import isolated_schema, psycopg_url

    if not database_url:
        url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.sqlite"
        return url, url
    url = stack.enter_context(isolated_schema(database_url, prefix="portico_bench", kept=keep))
    schema_option = url[url.index("options="):]
    return url, psycopg_url(database_url) + ("&" if "?" in database_url else "?") + schema_option


def make_app(url: str, stack: ExitStack, **overrides):
    from wsgi import create_app

    jobs_dir = stack.enter_context(tempfile.TemporaryDirectory())
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "PLATFORM_DOMAIN": "localhost",
                       "JOBS_SQLITE_PATH": f"{jobs_dir}/jobs.sqlite", "RATELIMIT_ENABLED": False,
                       "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024, "ARGON2_PARALLELISM": 1,
                       "LOG_LEVEL": "WARNING", **overrides})


def sign_in(app, slug: str, email: str, password: str = PASSWORD):
    """A test client signed in as staff of `slug`, through the real form; returns (client, base_url)."""
    client = app.test_client()
    base = f"http://{slug}.localhost"
    page = client.get("/staff/login", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post("/staff/login", base_url=base,
                           data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, "could not sign in"
    return client, base


def print_profile(name: str, fn, repeat: int, top: int = 30) -> None:
    """Run `fn` `repeat` times under cProfile and print the functions that took the most time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        fn()
    profiler.disable()
    print(f"--- profile of {name} ({repeat} runs)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def paired_median_ms(fn, baseline, repeat: int) -> tuple[float, float]:
    """The medians of `fn` and of its `baseline`, timed in turns: on a shared machine, whatever
    else runs slows both alike instead of whichever was being timed at that moment."""
    samples: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for timed, out in ((fn, samples[0]), (baseline, samples[1])):
            start = time.perf_counter()
            timed()
            out.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


def target(name: str, value, *, at_least=None, at_most=None, unit: str = "") -> dict:
    """One figure beside its target, as bench/all.py tabulates them: put a list of these under
    "targets" in the JSON object a benchmark prints last."""
    if (at_least is None) == (at_most is None):
        raise ValueError("a target is either at_least or at_most")
    holds = value is not None and (value >= at_least if at_least is not None else value <= at_most)
    bound = at_least if at_least is not None else at_most
    return {"name": name, "value": value, "unit": unit, "holds": bool(holds),
            "target": f"{'>=' if at_least is not None else '<='} {bound:g}{(' ' + unit) if unit else ''}"}
