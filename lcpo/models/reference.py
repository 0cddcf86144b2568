"""The frozen reference policy of the KL term: a copy of the starting policy, stored in the compute dtype."""

from __future__ import annotations

import copy
from typing import Optional

import torch


def frozen_reference(policy: torch.nn.Module, dtype: Optional[torch.dtype] = None) -> torch.nn.Module:
    """An eval-mode, gradient-free copy of ``policy`` whose floating-point *parameters* are cast to ``dtype``.

    Buffers keep their dtype: ``Module.to(dtype)`` would also cast RoPE's ``inv_freq`` (a plain fp32 buffer in
    transformers), and in bf16 its rounding shifts the rotary phase by radians at a few thousand positions, so the
    reference would no longer be the starting policy and the KL term would pull towards the wrong positions.
    """
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    if dtype is not None:
        for param in ref.parameters():
            if param.is_floating_point():
                param.data = param.data.to(dtype)
    return ref
