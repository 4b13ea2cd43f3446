"""The cache's key layout, shared by its writer and its reader.

    PREFIX:live                         the live run's tag (the one key readers start from)
    PREFIX:TAG:meta                     JSON: run_id, model_version, expires_at, preference lists
    PREFIX:TAG:popular                  JSON: the run's record_popularity (the cold-start list)
    PREFIX:TAG:u:USER_ID                hash: list name → JSON rows (every list of the user)
    PREFIX:TAG:i:SOURCE_TYPE:SOURCE_ID  hash: similarity type → JSON rows

TAG is the first 12 hex digits of the run id: keys stay short (there is one per user and one
per item), and two runs' tags differ unless their random ids share 48 bits.
"""

from __future__ import annotations

TAG_LENGTH = 12


def run_tag(run_id: str) -> str:
    """Return the short tag of a run id that its keys carry."""
    return run_id.replace("-", "")[:TAG_LENGTH]


def live_key(prefix: str) -> str:
    """Return the pointer key: it names the live run's tag."""
    return f"{prefix}:live"


def run_pattern(prefix: str, tag: str) -> str:
    """Return the SCAN pattern of every key of the run `tag`."""
    return f"{prefix}:{tag}:*"


def meta_key(prefix: str, tag: str) -> str:
    """Return the key of the run's shared values."""
    return f"{prefix}:{tag}:meta"


def popular_key(prefix: str, tag: str) -> str:
    """Return the key of the run's popularity list."""
    return f"{prefix}:{tag}:popular"


def user_suffix(user_id: int) -> str:
    """Return the part of a user's key after PREFIX:TAG: (the reader's script joins them)."""
    return f"u:{user_id}"


def item_suffix(source_type: str, source_id: int) -> str:
    """Return the part of an item's key after PREFIX:TAG:."""
    return f"i:{source_type}:{source_id}"


def user_key(prefix: str, tag: str, user_id: int) -> str:
    """Return the key of a user's lists."""
    return f"{prefix}:{tag}:{user_suffix(user_id)}"


def item_key(prefix: str, tag: str, source_type: str, source_id: int) -> str:
    """Return the key of an item's neighbour lists."""
    return f"{prefix}:{tag}:{item_suffix(source_type, source_id)}"
