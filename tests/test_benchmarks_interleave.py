"""benchmarks/interleave.run_blocks: interleaving makes the median ratio robust to a load change hitting both sides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from interleave import block_order, run_blocks  # noqa: E402


class FakeMachine:
    """A machine whose speed halves after `slow_after` calls (another job starting); contestants scale with it."""

    def __init__(self, slow_after: int) -> None:
        self.calls: list[str] = []
        self.slow_after = slow_after

    def contestant(self, name: str, speed: float):
        def block() -> float:
            factor = 1.0 if len(self.calls) < self.slow_after else 0.5
            self.calls.append(name)
            return speed * factor
        return block


def test_median_ratio_is_robust_to_a_load_change():
    machine = FakeMachine(slow_after=5)  # the 6th call (block 2, second slot) is the first slow one
    result = run_blocks({"ours": machine.contestant("ours", 300.0), "base": machine.contestant("base", 100.0)},
                        blocks=6, reference="base")
    assert machine.calls == ["ours", "base", "base", "ours"] * 3
    ratios = result["ratios"]["ours"]
    assert ratios["per_block"] == [3.0, 3.0, 6.0, 3.0, 3.0, 3.0]  # only the block the change split is off
    assert ratios["median"] == 3.0
    assert (ratios["min"], ratios["max"], ratios["q25"], ratios["q75"]) == (3.0, 6.0, 3.0, 3.0)
    assert result["per_block"][0] == {"ours": 300.0, "base": 100.0}
    assert result["per_block"][5] == {"ours": 150.0, "base": 50.0}
    # ours ran 3 fast blocks and 3 slow ones, base 2 fast and 4 slow: medians of the raw throughputs mislead
    assert result["throughput_median"] == {"ours": 225.0, "base": 50.0}
    assert result["blocks"] == 6 and result["reference"] == "base"
    assert "base" not in result["ratios"]

    # the same load change, contestants back to back (all of ours, then all of base): the ratio reads 6, not 3
    machine = FakeMachine(slow_after=6)
    ours = [machine.contestant("ours", 300.0)() for _ in range(6)]
    base = [machine.contestant("base", 100.0)() for _ in range(6)]
    assert sum(ours) / sum(base) == 6.0


def test_order_rotates_so_nobody_always_goes_first():
    assert [block_order(["a", "b", "c"], i) for i in range(3)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    machine = FakeMachine(slow_after=10**6)
    result = run_blocks({n: machine.contestant(n, s) for n, s in [("a", 1.0), ("b", 2.0), ("c", 4.0)]},
                        blocks=3, reference="a", warmup_blocks=1)
    assert len(machine.calls) == 12 and machine.calls[:3] == ["a", "b", "c"]  # warm-up block first
    assert result["order"] == [["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert result["ratios"]["b"]["median"] == 2.0 and result["ratios"]["c"]["median"] == 4.0
    assert result["warmup"] == [{"a": 1.0, "b": 2.0, "c": 4.0}]
    assert len(result["seconds_per_block"]) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"reference": "nope"}, "reference 'nope'"),
    ({"blocks": 0}, "blocks must be a positive integer"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = {"contestants": {"a": lambda: 1.0, "b": lambda: 1.0}, "blocks": 2, "reference": "a", **kwargs}
    with pytest.raises(ValueError, match=message):
        run_blocks(**args)


def test_bad_throughput_names_contestant_and_block():
    with pytest.raises(ValueError, match=r"contestant 'b', block 0: .*got 0\.0"):
        run_blocks({"a": lambda: 1.0, "b": lambda: 0.0}, blocks=2, reference="a")
