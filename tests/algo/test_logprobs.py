"""Chunked log-probs and entropies equal the full log-softmax computation, values and gradients, in any chunking."""

import pytest
import torch

from lcpo.algo.logprobs import chunk_tokens, chunked_logprobs


def _full(hidden, weight, bias, labels, temperature):
    z = hidden @ weight.t()
    if bias is not None:
        z = z + bias
    logq = torch.log_softmax(z / temperature, dim=-1)
    return logq.gather(-1, labels[:, None])[:, 0], -(logq.exp() * logq).sum(-1)


def _grads(fn, inputs, g_logp, g_ent):
    for x in inputs:
        x.grad = None
    logp, entropy = fn()
    ((logp * g_logp).sum() + (entropy * g_ent).sum()).backward()
    return logp.detach(), entropy.detach(), [x.grad.clone() for x in inputs]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize("with_bias", [False, True])
def test_chunked_equals_full_with_gradients(chunk, with_bias):
    gen = torch.Generator().manual_seed(0)
    n, h, v, temperature = 53, 12, 97, 0.7
    hidden = torch.randn(n, h, generator=gen, requires_grad=True)
    weight = (0.5 * torch.randn(v, h, generator=gen)).requires_grad_()
    bias = (0.1 * torch.randn(v, generator=gen)).requires_grad_() if with_bias else None
    labels = torch.randint(0, v, (n,), generator=gen)
    g_logp, g_ent = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    inputs = [x for x in (hidden, weight, bias) if x is not None]

    ref = _grads(lambda: _full(hidden, weight, bias, labels, temperature), inputs, g_logp, g_ent)
    got = _grads(lambda: chunked_logprobs(hidden, weight, labels, bias, temperature, chunk), inputs, g_logp, g_ent)

    torch.testing.assert_close(got[0], ref[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=0)
    for a, b in zip(got[2], ref[2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_one_output_alone_backpropagates():
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(9, 4, generator=gen, requires_grad=True)
    weight = torch.randn(11, 4, generator=gen)
    labels = torch.randint(0, 11, (9,), generator=gen)
    logp, _ = chunked_logprobs(hidden, weight, labels, chunk=4)
    logp.sum().backward()
    expected = torch.autograd.grad(_full(hidden, weight, None, labels, 1.0)[0].sum(), hidden)[0]
    torch.testing.assert_close(hidden.grad, expected, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_accumulates_the_head_gradient_in_fp32():
    """Under bf16 autocast the products run in bf16, and the results (and the fp32 weight's gradient) stay fp32."""
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(30, 16, generator=gen, requires_grad=True)
    weight = (0.3 * torch.randn(40, 16, generator=gen)).requires_grad_()
    labels = torch.randint(0, 40, (30,), generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logp, entropy = chunked_logprobs(hidden, weight, labels, chunk=8)
    (logp.sum() + entropy.sum()).backward()
    assert logp.dtype == entropy.dtype == weight.grad.dtype == hidden.grad.dtype == torch.float32
    full_logp, full_entropy = _full(hidden.detach(), weight.detach(), None, labels, 1.0)
    torch.testing.assert_close(logp.detach(), full_logp, atol=0.1, rtol=0)  # bf16 products: close, not equal
    torch.testing.assert_close(entropy.detach(), full_entropy, atol=0.1, rtol=0)


def test_chunk_tokens_bounds_the_logits():
    assert chunk_tokens(151_936, 128) == 128 * 2**20 // (151_936 * 4) == 220
    assert chunk_tokens(100, 1) == 2621
    assert chunk_tokens(10**9, 1) == 1  # always at least one token
    with pytest.raises(ValueError, match="chunk"):
        chunked_logprobs(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(2, dtype=torch.long), chunk=0)
    with pytest.raises(ValueError, match="hidden"):
        chunked_logprobs(torch.zeros(2, 1, 3), torch.zeros(4, 3), torch.zeros(2, dtype=torch.long))


def test_nothing_logit_sized_is_kept_for_backward():
    """Only the inputs and per-token values are saved: the [tokens, vocabulary] logits are recomputed in chunks."""
    n, h, v = 200, 8, 500
    hidden = torch.randn(n, h, requires_grad=True)
    weight = torch.randn(v, h, requires_grad=True)
    labels = torch.randint(0, v, (n,))
    for fn, bound in ((lambda: chunked_logprobs(hidden, weight, labels, chunk=16), v * h),
                      (lambda: _full(hidden, weight, None, labels, 1.0), n * v)):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            fn()
        assert max(sizes) == bound  # the full computation keeps n x v values; the chunked one the head's v x h
