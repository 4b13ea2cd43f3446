"""Scale profiles S / M / L / XL, generated once into PostgreSQL and reused while unchanged.

Ratios (the generator's defaults, in proportion to users): favourites ≈ 3–5 per user,
collections ≈ 0.6 per user with ≈ 6 items each, follows ≈ 0.8 per user, inventory ≈ 1.5
listings per record over stores ≈ records / 100 (see transforms/synthetic/frames.py's docstring).
A profile's database is named rotation_bench_<profile>; a `bench_profile` row in `settings`
records the profile, generator version and seed, so a second call reuses it.

    .venv/bin/python bench/profiles.py list          # the profiles' databases and sizes
    .venv/bin/python bench/profiles.py drop L XL     # give their disk back (L ≈ 13 GB)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from flows.analyst.generate import generate_into
from flows.storage.database import Database, parse_database
from flows.storage.migrate import migrate

SEED = 42
END = date(2026, 11, 1)  # fixed: the same profile gives the same rows on every machine
DAYS = 90
ADMIN_URL = os.environ.get("ROTATION_BENCH_PG", "postgresql://root@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Profile:
    """One scale profile of the benchmark."""

    name: str
    users: int
    tracks: int  # records = tracks / 10
    plays: int
    events: int


PROFILES = {
    "XS": Profile("XS", 500, 5_000, 50_000, 100_000),  # for the test suite's smoke run
    "S": Profile("S", 10_000, 50_000, 1_000_000, 2_000_000),
    "M": Profile("M", 30_000, 150_000, 3_000_000, 6_000_000),
    "L": Profile("L", 100_000, 500_000, 10_000_000, 20_000_000),
    "XL": Profile("XL", 200_000, 1_000_000, 20_000_000, 40_000_000),  # ≈ 26 GB: drop it after
}


def generator_version() -> str:
    """Return a hash of the generator's source: a changed generator regenerates profiles.

    The files are the generator's own import closure within the project (found from its
    imports, not from file names), so the hash follows them wherever they move.
    """
    digest = hashlib.sha256()
    for name in sorted(import_closure(GENERATOR)):
        spec = importlib.util.find_spec(name)
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes())
    return digest.hexdigest()[:12]


GENERATOR = "transforms.synthetic.frames"


def import_closure(module: str) -> set[str]:
    """Return `module` and every project module it imports, directly or not (read by ast)."""
    seen, pending = set(), [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(Path(importlib.util.find_spec(name).origin).read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            pending += [n for n in names if n.split(".")[0] in PACKAGES and _is_module(n)]
    return seen


PACKAGES = ("flows", "models", "transforms")


def _is_module(name: str) -> bool:
    """Return True when `name` is a module file (not a package, nor a name inside a module)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return False
    return spec is not None and spec.submodule_search_locations is None


def profile_database(profile: Profile, admin_url: str = ADMIN_URL) -> Database:
    """Return the Database URL of a profile (same server as `admin_url`)."""
    base = admin_url.rsplit("/", 1)[0]
    return parse_database(f"{base}/rotation_bench_{profile.name.lower()}")


def stamp(profile: Profile) -> str:
    """Return the JSON that identifies a generated profile."""
    return json.dumps(
        {
            **asdict(profile),
            "seed": SEED,
            "end": END.isoformat(),
            "days": DAYS,
            "generator": generator_version(),
        },
        sort_keys=True,
    )


def _current_stamp(db: Database) -> str | None:

    try:
        with psycopg.connect(db.url, connect_timeout=5) as conn:
            row = conn.execute("SELECT value::text FROM settings WHERE key = 'bench_profile'")
            found = row.fetchone()
            return json.loads(found[0]) if found else None
    except psycopg.Error:
        return None


def ensure_profile(
    profile: Profile,
    admin_url: str = ADMIN_URL,
    log=print,
    db: Database | None = None,
    sql_dir: Path | None = None,
) -> Database:
    """Return the profile's database, generating it first unless it is already current.

    `db` names an existing (empty or stale) database to use instead of rotation_bench_<name>;
    `sql_dir` generates it under other migrations (bench/partitions.py: the schema before 0020).
    """
    given = db is not None
    db = db or profile_database(profile, admin_url)
    wanted = stamp(profile)
    if _current_stamp(db) == wanted:
        migrate(
            db, sql_dir
        )  # a profile generated before a later migration gets it (data unchanged)
        log(f"profile {profile.name}: reusing {db.display}")
        return db
    if not given:
        name = db.url.rsplit("/", 1)[1]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    log(f"profile {profile.name}: generating into {db.display}")
    generate_into(
        db,
        users=profile.users,
        tracks=profile.tracks,
        days=DAYS,
        seed=SEED,
        end=END,
        plays=profile.plays,
        events=profile.events,
        progress=log,
        sql_dir=sql_dir,
    )
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO settings (key, value, setting_type, description) "
            "VALUES ('bench_profile', to_jsonb(%s::text), 'json', 'benchmark profile stamp')",
            (wanted,),
        )
    return db


def emit_report(report: dict, path: str | None) -> None:
    """Print a benchmark's report as JSON, and write it to `path` when given."""
    text = json.dumps(report, indent=2, default=str)
    if path:
        Path(path).write_text(text)
    print(text)


def machine() -> dict:
    """Return the cores and memory of this machine."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _database_name(profile: Profile, admin_url: str) -> str:
    return profile_database(profile, admin_url).url.rsplit("/", 1)[1]


def database_sizes(admin_url: str = ADMIN_URL) -> dict[str, int]:
    """Return the bytes on disk of each profile's database that exists, by profile name."""
    names = {_database_name(p, admin_url): p.name for p in PROFILES.values()}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname = ANY(%s)",
            (list(names),),
        ).fetchall()
    return {names[name]: int(size) for name, size in rows}


def drop_profiles(names: list[str], admin_url: str = ADMIN_URL) -> list[str]:
    """Drop the databases of the named profiles (those that exist); return the names dropped."""
    existing = database_sizes(admin_url)
    dropped = [name for name in names if name in existing]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in dropped:
            database = _database_name(PROFILES[name], admin_url)  # trusted: ours
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return dropped


def main() -> None:
    """List the profiles' databases with their sizes, or drop some."""
    parser = argparse.ArgumentParser(description="the benchmark profiles' databases")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="each generated profile and its size on disk")
    drop = commands.add_parser("drop", help="drop the named profiles' databases")
    drop.add_argument("profiles", nargs="+", choices=sorted(PROFILES))
    args = parser.parse_args()
    if args.command == "drop":
        dropped = drop_profiles(args.profiles)
        print(f"dropped: {', '.join(dropped) or 'none (not generated)'}")
        return
    sizes = database_sizes()
    for name in PROFILES:
        if name in sizes:
            print(f"{name}: {sizes[name] / 1e9:.1f} GB")
    if not sizes:
        print("no profile generated")


if __name__ == "__main__":
    main()
