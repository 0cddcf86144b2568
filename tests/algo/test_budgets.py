import random
from collections import Counter

import pytest

from lcpo.config import PromptConfig

from lcpo.algo.budgets import (
    BudgetSampler,
    BudgetSpec,
    ChoiceBudget,
    FixedBudget,
    LogUniformBudget,
    Mode,
    UniformBudget,
)


def test_uniform_respects_inclusive_range():
    rng = random.Random(0)
    draws = [UniformBudget(100, 110).sample(rng) for _ in range(2000)]
    assert min(draws) == 100 and max(draws) == 110


def test_loguniform_range_and_log_spread():
    rng = random.Random(1)
    dist = LogUniformBudget(8, 14.5)
    draws = [dist.sample(rng) for _ in range(5000)]
    assert 256 <= min(draws) and max(draws) <= dist.largest
    # half the mass lies below 2 ** 11.25 for a log-uniform law
    below = sum(d < 2**11.25 for d in draws) / len(draws)
    assert abs(below - 0.5) < 0.03


def test_fixed_and_choice():
    rng = random.Random(2)
    assert {FixedBudget(77).sample(rng) for _ in range(10)} == {77}
    counts = Counter(ChoiceBudget((1, 2, 3)).sample(rng) for _ in range(3000))
    assert set(counts) == {1, 2, 3} and all(abs(c / 3000 - 1 / 3) < 0.04 for c in counts.values())


def sample_specs(sampler: BudgetSampler, n: int, seed: int) -> list[BudgetSpec]:
    rng = random.Random(seed)
    return [sampler.sample(rng) for _ in range(n)]


def test_seeds_reproducible_and_distinct():
    sampler = BudgetSampler(UniformBudget(100, 4000), max_share=0.5, none_share=0.0)
    assert sample_specs(sampler, 50, seed=3) == sample_specs(sampler, 50, seed=3)
    assert sample_specs(sampler, 50, seed=3) != sample_specs(sampler, 50, seed=4)


def test_mixture_shares_within_tolerance():
    sampler = BudgetSampler(UniformBudget(100, 4000), max_share=0.3, none_share=0.2)
    modes = Counter(s.mode for s in sample_specs(sampler, 20000, seed=5))
    assert set(modes) == set(Mode) and all(type(m) is Mode for m in modes)
    assert abs(modes[Mode.MAX] / 20000 - 0.3) < 0.015
    assert abs(modes[Mode.NONE] / 20000 - 0.2) < 0.015
    assert abs(modes[Mode.EXACT] / 20000 - 0.5) < 0.015


@pytest.mark.parametrize(
    "make",
    [
        lambda: UniformBudget(10, 5),
        lambda: UniformBudget(0, 5),
        lambda: LogUniformBudget(5, 4),
        lambda: FixedBudget(0),
        lambda: ChoiceBudget(()),
        lambda: BudgetSampler(FixedBudget(5), max_share=0.8, none_share=0.3),
        lambda: BudgetSampler(FixedBudget(5), max_share=-0.1, none_share=0.0),
        lambda: BudgetSpec("sometimes", 5),
        lambda: BudgetSpec("exact", None),
        lambda: BudgetSpec("none", 5),
    ],
)
def test_bad_parameters_rejected(make):
    with pytest.raises(ValueError):
        make()


def test_signed_encoding_round_trips():
    for spec in (BudgetSpec(Mode.EXACT, 512), BudgetSpec(Mode.MAX, 300), BudgetSpec(Mode.NONE, None)):
        assert BudgetSpec.from_signed(spec.signed()) == spec
    assert BudgetSpec(Mode.MAX, 300).signed() == -300 and BudgetSpec(Mode.NONE, None).signed() == -1


def test_mode_is_one_type_that_reads_and_prints_as_its_value():
    import json

    spec = BudgetSpec("max", 300)  # a value read back from YAML or JSON becomes the enum
    assert spec.mode is Mode.MAX and spec == BudgetSpec(Mode.MAX, 300)
    assert f"{spec.mode}/accuracy" == "max/accuracy" and str(Mode.EXACT) == "exact"
    assert json.dumps({"mode": Mode.EXACT}) == '{"mode": "exact"}'
    assert [m.code for m in Mode] == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown budget mode 'sometimes'"):
        BudgetSpec("sometimes", 5)


def test_prompt_wording_matches_reference():
    t = PromptConfig()
    assert t.render("What is 1+1?", BudgetSpec("exact", 1024)) == (
        "What is 1+1? Let's think step by step and output the final answer within \\boxed{}. Think for 1024 tokens."
    )
    assert t.render("Q", BudgetSpec("max", 512)).endswith("Think for maximum 512 tokens.")
    assert t.render("Q", BudgetSpec("none", None)).endswith("within \\boxed{}.")
    custom = PromptConfig(instruction="", exact="Budget: {budget}.", separator="\n")
    assert custom.render("Q", BudgetSpec("exact", 7)) == "Q\nBudget: 7."


def test_spread_budgets_are_the_midpoints_of_equal_parts_of_the_range():
    from lcpo.algo.budgets import spread_budgets

    assert spread_budgets(UniformBudget(30, 99)) == [39, 56, 73, 90]
    assert spread_budgets(FixedBudget(64)) == [64]
    assert (LogUniformBudget(8, 10).smallest, ChoiceBudget((5, 9, 7)).smallest) == (256, 5)
