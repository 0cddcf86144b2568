import math

import pytest
import torch

from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config import RewardConfig
from lcpo.config.reward import build_reward
from lcpo.algo.rewards import (
    RewardInputs,
    cosine,
    dapo_overlong,
    kimi_length,
    lcpo_exact,
    lcpo_max,
)

EXACT_EXAMPLES = [  # (target, length, correct) -> reward, the reference's worked examples at alpha = 0.0003
    ((1000, 1000, 1), 1.0),
    ((1000, 1200, 1), 0.94),
    ((1000, 800, 1), 0.94),
    ((1000, 1200, 0), -0.06),
    ((100, 4000, 1), -0.17),
]
MAX_EXAMPLES = [  # correct answers at alpha = 0.001, delta = 0.5
    ((1000, 1000), 0.5),
    ((1000, 1200), 0.3),
    ((1000, 1500), 0.0),
    ((1000, 800), 0.7),
    ((1000, 500), 1.0),
    ((1000, 100), 1.0),
]
#: The published coefficients of the worked examples.
EXACT, MAX = {"alpha": 0.0003}, {"alpha": 0.001, "delta": 0.5}
COSINE = {"correct_short": 2.0, "correct_long": 1.0, "wrong_short": -10.0, "wrong_long": 0.0, "exceed": -10.0}


@pytest.mark.parametrize("args,expected", EXACT_EXAMPLES)
def test_exact_worked_examples(args, expected):
    target, length, correct = args
    assert lcpo_exact(correct, target, length, **EXACT) == pytest.approx(expected)


@pytest.mark.parametrize("args,expected", MAX_EXAMPLES)
def test_max_worked_examples(args, expected):
    assert lcpo_max(1, *args, **MAX) == pytest.approx(expected)
    assert lcpo_max(0, *args, **MAX) == 0.0  # wrong answers get nothing


def test_batches_and_single_samples_agree():
    c = torch.tensor([1.0, 0.0, 1.0, 1.0])
    t = torch.tensor([1000.0, 1000.0, 100.0, 50.0])
    n = torch.tensor([1200.0, 1200.0, 4000.0, 0.0])
    for fn, coefficients in ((lcpo_exact, EXACT), (lcpo_max, MAX)):
        batch = fn(c, t, n, **coefficients)
        assert batch.dtype == torch.float32 and batch.shape == (4,)
        singles = [float(fn(float(a), float(b), float(d), **coefficients)) for a, b, d in zip(c, t, n)]
        assert torch.allclose(batch, torch.tensor(singles), atol=1e-6)


def test_edge_cases():
    assert lcpo_exact(1, 100, 0, **EXACT) == pytest.approx(1 - 0.03)  # empty response
    assert lcpo_exact(1, 777, 777, **EXACT) == 1.0  # on target
    assert lcpo_max(1, 100, 0, **MAX) == pytest.approx(0.6)  # at most 100 under: 0.001 * 100 + 0.5
    # a truncated response counts its full length and is wrong: only the length term remains
    assert lcpo_exact(0, 1000, 4096, **EXACT) == pytest.approx(-0.0003 * 3096)
    assert lcpo_max(0, 1000, 4096, **MAX) == 0.0


def test_baselines():
    # DAPO: no penalty before L_max - L_cache, linear inside the cache, -1 past L_max
    assert dapo_overlong(1, 100, 1000, 200) == 1.0
    assert dapo_overlong(1, 900, 1000, 200) == pytest.approx(0.5)
    assert dapo_overlong(0, 1001, 1000, 200) == -1.0
    # cosine: short correct 2, long correct 1, short wrong -10, long wrong 0, exceeding -10
    assert cosine(1, 0, 100, **COSINE) == pytest.approx(2.0)
    assert cosine(1, 50, 100, **COSINE) == pytest.approx(1.5)
    assert cosine(0, 50, 100, **COSINE) == pytest.approx(-5.0)
    assert cosine(1, 100, 100, **COSINE) == -10.0
    # Kimi: lambda = 0.5 - (len - min) / (max - min) inside each group
    lam = kimi_length(torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0]), torch.tensor([10.0, 30.0, 10.0, 30.0, 5.0]),
                      torch.tensor([0, 0, 0, 0, 1]))
    assert torch.allclose(lam, torch.tensor([0.5, -0.5, 0.0, -0.5, 0.0]))


def _inputs():
    return RewardInputs.build(
        correct=[True, True, False, True],
        specs=[BudgetSpec(Mode.EXACT, 1000), BudgetSpec(Mode.MAX, 1000), BudgetSpec(Mode.MAX, 1000),
               BudgetSpec(Mode.NONE, None)],
        lengths=[1200, 1200, 800, 5000],
        max_length=4096,
        groups=[0, 0, 1, 1],
    )


def test_mixed_scores_each_row_by_its_mode():
    r = build_reward(RewardConfig(name="mixed"))(_inputs())
    assert torch.allclose(r, torch.tensor([0.94, 0.3, 0.0, 1.0]), atol=1e-6)


def test_single_formula_rewards_score_budgeted_rows():
    assert torch.allclose(build_reward(RewardConfig(name="exact"))(_inputs()), torch.tensor([0.94, 0.94, -0.06, 1.0]), atol=1e-6)
    assert torch.allclose(build_reward(RewardConfig(name="max", alpha=0.001))(_inputs()), torch.tensor([0.3, 0.3, 0.0, 1.0]), atol=1e-6)
    for name in ("correctness", "dapo", "kimi", "cosine"):
        out = build_reward(RewardConfig(name=name))(_inputs())
        assert out.shape == (4,) and all(math.isfinite(float(v)) for v in out)


@pytest.mark.parametrize("kwargs,key", [({"alpha": -1.0}, "reward.alpha"), ({"name": "nope"}, "reward.name"),
                                        ({"delta": 2.0}, "reward.delta")])
def test_config_rejects_bad_values(kwargs, key):
    with pytest.raises(ValueError, match=key):
        RewardConfig(**kwargs)


@pytest.mark.parametrize(
    "cap,length,penalty",
    [
        (20480, 16384, 0.0),  # published: 4096-token buffer under a 20,480-token cap, no penalty up to 16,384
        (20480, 18432, -0.5),
        (20480, 20480, -1.0),
        (4096, 3276, 0.0),  # L1's cap: the buffer is 20% of it (819.2 tokens), not the whole cap
        (4096, 3277, -0.2 / 819.2),
        (4096, 4096, -1.0),
        (4096, 4097, -1.0),
        (4096, 1, 0.0),
    ],
)
def test_dapo_buffer_is_a_share_of_the_cap(cap, length, penalty):
    reward = build_reward(RewardConfig(name="dapo"))
    x = RewardInputs.build([True], [BudgetSpec(Mode.NONE, None)], [length], cap, [0])
    assert reward(x).item() == pytest.approx(1.0 + penalty, abs=1e-6)
    half = build_reward(RewardConfig(name="dapo", overlong_ratio=0.5))
    assert half(RewardInputs.build([False], [BudgetSpec(Mode.NONE, None)], [3072], 4096, [0])).item() == pytest.approx(-0.5)


def test_overlong_ratio_is_validated():
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="reward.overlong_ratio"):
            RewardConfig(name="dapo", overlong_ratio=bad)


def test_schema_defaults_are_the_published_coefficients():
    """The worked examples above use the published values; the schema must hold the same ones."""
    cfg = RewardConfig()
    assert {"alpha": cfg.alpha} == EXACT and {"alpha": cfg.max_alpha, "delta": cfg.delta} == MAX
    assert {k: getattr(cfg, f"cosine_{k}") for k in COSINE} == COSINE


def test_mode_codes_in_reward_inputs_follow_the_enum():
    x = _inputs()
    assert x.mode.tolist() == [Mode.EXACT.code, Mode.MAX.code, Mode.MAX.code, Mode.NONE.code]
    assert sorted(m.code for m in Mode) == [0, 1, 2]
