"""What the engine sees of the trainer: no autocast around its calls (sampling, the weight push), and no gradients
left allocated when it wakes after an update; DDP keeps gradients in its buckets, and exports are built on the CPU."""

from __future__ import annotations

import torch

from lcpo.training.build import build
from lcpo.training.strategies import build_strategy
from lcpo.models.sharding import full_state_dict
from lcpo.models.tiny import build_tiny
from lcpo.config import TinyModelConfig


class EngineSpy:
    """The run's own engine, recording the trainer's state at each call before passing it on."""

    def __init__(self, engine, policy: torch.nn.Module):
        self.engine, self.policy = engine, policy
        self.calls: list[tuple[str, bool, bool]] = []  # (call, autocast on, any gradient allocated)

    def _record(self, call: str) -> None:
        grads = any(p.grad is not None for p in self.policy.parameters())
        self.calls.append((call, torch.is_autocast_enabled("cpu"), grads))

    def start(self, device):
        self.engine.start(device)

    def close(self):
        self.engine.close()

    def generate(self, *args, **kwargs):
        self._record("generate")
        return self.engine.generate(*args, **kwargs)

    def offload(self):
        self._record("offload")
        self.engine.offload()

    def sync_weights(self, model):
        self._record("sync_weights")
        self.engine.sync_weights(model)


def test_engine_calls_run_without_autocast_and_after_the_gradients_are_freed(compose_train, tmp_path):
    cfg = compose_train("model.dtype=bfloat16", "trainer.max_steps=2", "rollout.max_new_tokens=8",
                        "trainer.ckpt_every_n_steps=0", output_dir=tmp_path)
    module, datamodule, trainer = build(cfg)
    assert trainer.precision == "bf16-mixed"
    spy = EngineSpy(module.collector.engine, module.policy)
    module.collector.engine = spy
    in_update: list[bool] = []  # the update itself does run under the trainer's autocast
    update = module._update
    module._update = lambda rb: in_update.append(torch.is_autocast_enabled("cpu")) or update(rb)
    trainer.fit(module, datamodule=datamodule)
    assert [call for call, *_ in spy.calls] == ["sync_weights"] + ["generate", "offload", "sync_weights"] * 2
    assert not any(autocast for _, autocast, _ in spy.calls)
    assert not any(grads for call, _, grads in spy.calls if call == "sync_weights")
    assert in_update == [True, True]


def test_ddp_keeps_gradients_as_views_of_its_buckets():
    assert build_strategy("ddp")._ddp_kwargs == {"gradient_as_bucket_view": True}


def test_the_export_state_is_built_on_the_cpu_with_tied_weights_shared():
    model, _ = build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    state = full_state_dict(model)
    assert {v.device.type for v in state.values()} == {"cpu"}
    assert state["lm_head.weight"].data_ptr() == state["model.embed_tokens.weight"].data_ptr()
