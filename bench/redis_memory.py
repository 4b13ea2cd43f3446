"""Redis memory for the benchmarks: used_memory sampled while something runs (its peak), and
the deletion of a benchmark's key namespace."""

from __future__ import annotations

import threading
import uuid

import redis

from flows.storage.cache.target import CacheTarget, parse_cache_url

SAMPLE_EVERY_S = 0.2


def bench_target(url: str) -> CacheTarget:
    """Return `url` with a key prefix of this benchmark run's own."""
    prefix = f"rotation-bench-{uuid.uuid4().hex[:8]}"
    return parse_cache_url(f"{url}{'&' if '?' in url else '?'}prefix={prefix}")


def target_url(target: CacheTarget) -> str:
    """Return the URL a child process parses back into `target` (its prefix included)."""
    return f"{target.url}{'&' if '?' in target.url else '?'}prefix={target.prefix}"


def used_memory(client: redis.Redis) -> int:
    """Return Redis' used_memory (bytes)."""
    return client.info("memory")["used_memory"]


def delete_namespace(target: CacheTarget) -> int:
    """Delete every key of the target's prefix; return how many."""
    deleted = 0
    with redis.Redis.from_url(target.url) as client:
        batch = list(client.scan_iter(match=f"{target.prefix}:*", count=2000))
        for start in range(0, len(batch), 1000):
            deleted += client.unlink(*batch[start : start + 1000])
    return deleted


class MemorySampler:
    """Samples used_memory every SAMPLE_EVERY_S in a thread while the block runs: its peak."""

    def __init__(self, target: CacheTarget) -> None:
        self.client = redis.Redis.from_url(target.url)
        self.before = used_memory(self.client)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.peak = max(self.peak, used_memory(self.client))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = used_memory(self.client)
        self.peak = max(self.peak, self.after)
        self.client.close()

    def figures(self) -> dict:
        """Return used_memory before, after and at its peak, in bytes."""
        return {"before": self.before, "after": self.after, "peak": self.peak}
