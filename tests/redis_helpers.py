"""Redis for the cache tests: a key namespace of their own on the shared server, deleted after,
and private `redis-server` processes (on a spare port, no persistence) for the tests that kill
or fill one."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
import redis

from flows.storage.cache.target import CacheTarget, parse_cache_url

REQUIREPASS = "r3d1s-S3cret#pw"  # characters that mean something in a URL: encoded in it


def delete_namespace(client: redis.Redis, prefix: str) -> None:
    """Delete every key of `prefix`."""
    batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(batch), 500):
        client.unlink(*batch[start : start + 500])


@contextmanager
def namespace(url: str) -> Iterator[CacheTarget]:
    """Yield a CacheTarget on `url` with a fresh key prefix; its keys are deleted afterwards."""
    prefix = f"rotation-test-{uuid.uuid4().hex[:10]}"
    target = parse_cache_url(f"{url}{'&' if '?' in url else '?'}prefix={prefix}")
    try:
        yield target
    finally:
        with redis.Redis.from_url(target.url) as client:
            delete_namespace(client, prefix)


def spare_port() -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own (password, no persistence), started and stopped by it."""

    def __init__(self, maxmemory: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get("ROTATION_REQUIRE_REDIS") == "1":
                pytest.fail(message)
            pytest.skip(message)
        self.port = spare_port()
        self.args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.args += ["--save", "", "--appendonly", "no", "--requirepass", REQUIREPASS]
        if maxmemory:
            self.args += ["--maxmemory", maxmemory, "--maxmemory-policy", "noeviction"]
        self.process: subprocess.Popen | None = None
        self.url = f"redis://:{quote(REQUIREPASS, safe='')}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL the server (its data goes with it) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        """Return a client of this server."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)


@contextmanager
def private_redis(maxmemory: str | None = None) -> Iterator[PrivateRedis]:
    """Yield a started private redis-server; it is killed afterwards."""
    server = PrivateRedis(maxmemory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
