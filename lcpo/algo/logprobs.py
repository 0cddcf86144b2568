"""Per-token log-probabilities and entropies of next-token distributions, without materialising all the logits.

The update needs, for each response token, ``log p(token)`` and the entropy of the distribution it was drawn from.
Computed the obvious way (logits for every position, then log-softmax, gather and entropy), the largest tensors of
the step are ``[tokens, vocabulary]`` copies, which for a 150k-token vocabulary outgrow the model itself. Here the
LM head runs on the hidden states of the wanted positions only, a chunk of tokens at a time, and a custom autograd
function keeps nothing of a chunk but its log-normaliser: the backward pass recomputes each chunk's logits. Peak
extra memory is therefore a few chunk-sized buffers, whatever the sequence length.

Matrix products run in the compute dtype (bf16 under mixed precision) and everything after them in fp32, with the
LM head's gradient accumulated in fp32 across chunks.
"""

from __future__ import annotations

from typing import Optional

import torch

#: Bytes of one fp32 logit.
_FP32 = 4


def chunk_tokens(vocab_size: int, chunk_mb: float) -> int:
    """Tokens per chunk so that one chunk's fp32 logits take at most ``chunk_mb`` MiB (at least one token)."""
    return max(1, int(chunk_mb * 2**20) // (vocab_size * _FP32))


def compute_dtype(device: torch.device, default: torch.dtype) -> torch.dtype:
    """The dtype matrix products run in here: autocast's when it is on for ``device``, else ``default``."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return default


def _logits(
    hidden: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], scale: float
) -> torch.Tensor:
    """``(hidden @ weight.T + bias) * scale`` in fp32, the product taken in ``weight``'s dtype."""
    z = hidden.to(weight.dtype) @ weight.t()
    if bias is not None:
        z = z + bias
    return z.float().mul_(scale)


def _cast(tensor: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    return None if tensor is None else tensor.to(dtype)


class _ChunkedLogProbs(torch.autograd.Function):
    """``(log p(label), entropy)`` per row of ``hidden`` under ``softmax((hidden @ weight.T + bias) / T)``."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, inv_temperature, chunk, dtype):  # type: ignore[override]
        n = hidden.shape[0]
        logp = hidden.new_empty(n, dtype=torch.float32)
        entropy = hidden.new_empty(n, dtype=torch.float32)
        lse = hidden.new_empty(n, dtype=torch.float32)
        w, b = weight.to(dtype), _cast(bias, dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, n, chunk):
                rows = slice(start, min(start + chunk, n))
                z = _logits(hidden[rows], w, b, inv_temperature)
                lse[rows] = torch.logsumexp(z, dim=-1)
                logp[rows] = z.gather(-1, labels[rows, None])[:, 0] - lse[rows]
                z.sub_(lse[rows, None])  # z now holds log-probs
                entropy[rows] = -(z.exp()[:, None, :] @ z[:, :, None])[:, 0, 0]
                del z  # before the next chunk's logits exist: one chunk at a time, not two
        ctx.save_for_backward(hidden, weight, bias, labels, lse, entropy)
        ctx.inv_temperature, ctx.chunk, ctx.dtype = inv_temperature, chunk, dtype
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp, grad_entropy):  # type: ignore[override]
        hidden, weight, bias, labels, lse, entropy = ctx.saved_tensors
        scale, chunk, dtype = ctx.inv_temperature, ctx.chunk, ctx.dtype
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if need_bias else None
        if grad_logp is None:
            grad_logp = torch.zeros_like(lse)
        if grad_entropy is None:
            grad_entropy = torch.zeros_like(lse)
        n = hidden.shape[0]
        w, b = weight.to(dtype), _cast(bias, dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, n, chunk):
                rows = slice(start, min(start + chunk, n))
                logq = _logits(hidden[rows], w, b, scale).sub_(lse[rows, None])
                q = logq.exp()
                # d logp / dz = onehot - q;  d entropy / dz = -q * (log q + entropy)
                coef = logq.add_(entropy[rows, None]).mul_(grad_entropy[rows, None]).add_(grad_logp[rows, None])
                dz = q.mul_(coef).neg_()
                dz[torch.arange(dz.shape[0], device=dz.device), labels[rows]] += grad_logp[rows]
                dz = dz.mul_(scale).to(dtype)
                if need_hidden:
                    grad_hidden[rows] = (dz @ w).to(hidden.dtype)
                if need_weight:
                    grad_weight += (dz.t() @ hidden[rows].to(dtype)).float()
                if need_bias:
                    grad_bias += dz.float().sum(0)
                del logq, q, coef, dz  # as in forward: the next chunk's buffers are made after these are freed
        grad_weight = None if grad_weight is None else grad_weight.to(weight.dtype)
        grad_bias = None if grad_bias is None else grad_bias.to(bias.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None


def chunked_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    temperature: float = 1.0,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each label and the entropy of each row's distribution, in fp32, ``chunk`` rows at a time.

    ``hidden`` is ``[N, H]`` (the LM head's input at the N positions wanted), ``weight`` ``[V, H]`` and ``bias``
    ``[V]`` the LM head, ``labels`` ``[N]``. Gradients flow to ``hidden``, ``weight`` and ``bias`` through both
    outputs, exactly as for ``log_softmax(hidden @ weight.T / temperature)``.
    """
    if hidden.dim() != 2 or labels.shape != hidden.shape[:1]:
        raise ValueError(f"need hidden [N, H] and labels [N], got {tuple(hidden.shape)} and {tuple(labels.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    dtype = compute_dtype(hidden.device, torch.promote_types(hidden.dtype, weight.dtype))
    return _ChunkedLogProbs.apply(hidden, weight, bias, labels, 1.0 / temperature, chunk, dtype)
