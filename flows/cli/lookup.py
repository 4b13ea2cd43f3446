"""Handlers of `rotation recommend` and `rotation similar`: the published lists, read back."""

from __future__ import annotations

import sys

from flows.analyst.lookups import (
    format_recommendations,
    format_similar,
    read_recommendations,
    read_similar,
)


def recommend(args) -> int:
    """Print a user's published lists with reasons (through --cache: as the API serves them)."""
    frame = read_recommendations(args.db, args.user_id, args.list_name, args.limit, args.cache)
    print(format_recommendations(frame, args.user_id))
    if args.cache is not None and "source" in frame.columns:
        counts = frame.unique(["list_name"]).group_by("source").len().sort("source").rows()
        served = ", ".join(f"{n} list(s) from {source}" for source, n in counts) or "no list"
        print(f"rotation: read through {args.cache.display}: {served}", file=sys.stderr)
    return 0 if frame.height else 1


def similar(args) -> int:
    """Print an item's published neighbours."""
    frame = read_similar(
        args.db, args.source_type, args.source_id, args.similarity_type, args.limit, args.cache
    )
    print(format_similar(frame, args.source_type, args.source_id))
    return 0 if frame.height else 1
