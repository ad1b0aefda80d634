import numpy as np
import pytest

from fedray.cluster.runtime import InlineRuntime
from fedray.platform.errors import FedrayError


class Counter:
    def __init__(self, start):
        self.value = start

    def add(self, x):
        self.value += x
        return self.value

    def boom(self):
        raise ValueError("boom")


def test_calls_return_refs_resolved_by_get():
    rt = InlineRuntime()
    actor = rt.spawn(Counter, 1, num_cpus=0.5)
    refs = [actor.add.remote(2), actor.add.remote(3)]
    assert rt.get(refs) == [3, 6]
    ready, pending = rt.wait(refs, num_returns=2, timeout=1.0)
    assert ready == refs and pending == []
    assert len({refs[0]: 0, refs[1]: 1}) == 2  # refs key dicts, like Ray's


def test_errors_surface_on_get_not_on_call():
    rt = InlineRuntime()
    ref = rt.spawn(Counter, 0).boom.remote()
    with pytest.raises(ValueError, match="boom"):
        rt.get(ref)


def test_put_gives_consumers_a_copy_and_refs_resolve_as_arguments():
    rt = InlineRuntime()
    data = {"w": np.zeros(2)}
    ref = rt.put(data)
    data["w"][0] = 5
    assert rt.get(ref)["w"][0] == 0
    holder = rt.spawn(Counter, ref)  # a top-level ref argument arrives as its value, as under Ray
    assert isinstance(holder.instance.value, dict) and holder.instance.value["w"][0] == 0
    assert rt.get(rt.spawn(Counter, 1).add.remote(rt.put(2))) == 3


def test_killed_actor_fails_its_calls():
    rt = InlineRuntime()
    actor = rt.spawn(Counter, 0)
    rt.kill(actor)
    with pytest.raises(FedrayError, match="was killed"):
        rt.get(actor.add.remote(1))


def _scale(values, factor=1):
    if factor < 0:
        raise ValueError("negative factor")
    return [v * factor for v in values]


def test_tasks_run_at_once_and_deliver_errors_on_get():
    rt = InlineRuntime()
    ref = rt.submit(_scale, rt.put([1, 2]), num_cpus=0.5, factor=3)
    assert rt.get(ref) == [3, 6]
    bad = rt.submit(_scale, [1], factor=-1)
    with pytest.raises(ValueError, match="negative"):
        rt.get(bad)
