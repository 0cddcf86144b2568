"""Online LCPO/GRPO training on Lightning: the module that owns policy, reference and engine; the rollout collector
(generate, grade, reward, advantages, pack); the PPO-style update; the prompt data module; callbacks, checkpoints
and guards; and ``build``, the one place that wires and runs a training run from its config.

This is the only layer that knows Lightning's training loop. It imports everything below it (:mod:`lcpo.eval` for
the periodic validation, :mod:`lcpo.rollout`, :mod:`lcpo.tasks`, :mod:`lcpo.models`, :mod:`lcpo.config`,
:mod:`lcpo.algo`), and nothing of :mod:`lcpo.cli` or :mod:`lcpo.bench`.
"""
