"""Scale profiles S / M / L, generated once into PostgreSQL and reused while unchanged.

Ratios (the generator's defaults, in proportion to users): favourites ≈ 3–5 per user,
collections ≈ 0.6 per user with ≈ 6 items each, follows ≈ 0.8 per user, inventory ≈ 1.5
listings per record over stores ≈ records / 100 (see transforms/synthetic.py's docstring).
A profile's database is named rotation_bench_<profile>; a `bench_profile` row in `settings`
records the profile, generator version and seed, so a second call reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.database import Database, parse_database

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
}


def generator_version() -> str:
    """Return a hash of the generator's source: a changed generator regenerates profiles."""
    root = Path(__file__).resolve().parent.parent / "transforms"
    digest = hashlib.sha256()
    for path in sorted(root.glob("synthetic*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


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
    import psycopg

    try:
        with psycopg.connect(db.url, connect_timeout=5) as conn:
            row = conn.execute("SELECT value::text FROM settings WHERE key = 'bench_profile'")
            found = row.fetchone()
            return json.loads(found[0]) if found else None
    except psycopg.Error:
        return None


def ensure_profile(
    profile: Profile, admin_url: str = ADMIN_URL, log=print, db: Database | None = None
) -> Database:
    """Return the profile's database, generating it first unless it is already current.

    `db` names an existing (empty or stale) database to use instead of rotation_bench_<name>.
    """
    import psycopg

    given = db is not None
    db = db or profile_database(profile, admin_url)
    wanted = stamp(profile)
    if _current_stamp(db) == wanted:
        from flows.migrate import migrate

        migrate(db)  # a profile generated before a later migration gets it (data unchanged)
        log(f"profile {profile.name}: reusing {db.display}")
        return db
    if not given:
        name = db.url.rsplit("/", 1)[1]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    from flows.generate import generate_into

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
    )
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO settings (key, value, setting_type, description) "
            "VALUES ('bench_profile', to_jsonb(%s::text), 'json', 'benchmark profile stamp')",
            (wanted,),
        )
    return db


def machine() -> dict:
    """Return the cores and memory of this machine."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
