"""The ``reward`` group: which reward scores a rollout and its coefficients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lcpo.algo.rewards import (
    Reward, by_mode, cosine, dapo_overlong, kimi_length, lcpo_exact, lcpo_max,
)

from lcpo.config.checks import in_range, one_of, positive

#: What a reward's length n_y counts (see ``RewardConfig.length``).
LENGTHS = ("total", "thinking")
#: Rewards that read the budget; the others ignore it (length-shaping baselines or plain correctness).
BUDGET_AWARE = frozenset({"exact", "max", "mixed"})


@dataclass
class RewardConfig:
    """Which reward and its knobs (``conf/reward/*.yaml`` name the reward). The defaults are the published ones.

    ``alpha`` is the exact reward's coefficient (and the max reward's when ``name=max``); ``max_alpha`` is the
    max reward's coefficient inside ``mixed``. ``overlong_ratio`` is DAPO's soft-overlong interval ``L_cache`` as a
    share of the generation cap ``L_max`` (``rollout.max_new_tokens``): published 4096 of 20480, so the penalty ramps
    over the last 20% of the cap whatever the cap is. ``length`` is the n_y every length term reads: ``total`` (every
    response token, as the paper) or ``thinking`` (the tokens before ``</think>``; a response without it is all
    thinking).
    """

    name: str = "exact"
    length: str = "total"
    alpha: float = 0.0003
    max_alpha: float = 0.001
    delta: float = 0.5
    overlong_ratio: float = 0.2
    kimi_coef: float = 1.0
    cosine_correct_short: float = 2.0
    cosine_correct_long: float = 1.0
    cosine_wrong_short: float = -10.0
    cosine_wrong_long: float = 0.0
    cosine_exceed: float = -10.0

    def __post_init__(self) -> None:
        one_of("reward.name", self.name, REWARD_NAMES)
        one_of("reward.length", self.length, LENGTHS)
        for key in ("alpha", "max_alpha", "kimi_coef"):
            positive(f"reward.{key}", getattr(self, key), allow_zero=True)
        in_range("reward.delta", self.delta, 0.0, 1.0)
        in_range("reward.overlong_ratio", self.overlong_ratio, 0.0, 1.0, low_open=True)
        for key in ("cosine_correct_short", "cosine_correct_long", "cosine_wrong_short", "cosine_wrong_long",
                    "cosine_exceed"):
            in_range(f"reward.{key}", getattr(self, key), -1e6, 1e6)


def _exact(alpha: float) -> Reward:
    return lambda x: lcpo_exact(x.correct, x.budget, x.length, alpha)


def _max(alpha: float, delta: float) -> Reward:
    return lambda x: lcpo_max(x.correct, x.budget, x.length, alpha, delta)


REWARDS: dict[str, Callable[[RewardConfig], Reward]] = {
    # exact / max score every budgeted row with their formula; mixed scores each row by its own mode (L1-Max).
    "exact": lambda c: by_mode(_exact(c.alpha), _exact(c.alpha)),
    "max": lambda c: by_mode(_max(c.alpha, c.delta), _max(c.alpha, c.delta)),
    "mixed": lambda c: by_mode(_exact(c.alpha), _max(c.max_alpha, c.delta)),
    "correctness": lambda c: lambda x: x.correct.clone(),
    "dapo": lambda c: lambda x: dapo_overlong(x.correct, x.length, x.max_length, c.overlong_ratio * x.max_length),
    "kimi": lambda c: lambda x: x.correct + c.kimi_coef * kimi_length(x.correct, x.length, x.group),
    "cosine": lambda c: lambda x: cosine(
        x.correct, x.length, x.max_length, c.cosine_correct_short, c.cosine_correct_long,
        c.cosine_wrong_short, c.cosine_wrong_long, c.cosine_exceed,
    ),
}
#: Every reward name ``reward.name`` accepts.
REWARD_NAMES = tuple(REWARDS)


def build_reward(cfg: RewardConfig) -> Reward:
    """The reward function named by ``cfg.name``, returning float32 rewards."""
    reward = REWARDS[cfg.name](cfg)
    return lambda x: reward(x).float()
