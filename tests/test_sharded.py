"""ReadShards: the shards' tasks are submitted on their data until the run lets it go."""

from __future__ import annotations

import pytest

from flows.runner import Done, direct_submit
from flows.sharded import ReadShards


def test_the_shards_data_let_go_takes_no_more_tasks():
    read = ReadShards(direct_submit, None, [Done(2), Done(3)], [], None, None)
    assert [f.result() for f in read.each("square", lambda x, p: x**p, 2)] == [4, 9]
    read.let_go()
    assert read.loaded == []  # the run's references gone: each worker may free its shard
    with pytest.raises(RuntimeError, match="let go"):
        read.each("square", lambda x, p: x**p, 2)
