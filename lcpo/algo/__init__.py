"""The algorithm, as pure functions: budgets and their sampling, grading, rewards, group advantages, the policy
losses, log-probs, batching and metrics.

Nothing here knows Lightning, Hydra, an engine or a data module: tensors and plain Python in, tensors and plain
Python out, so every formula has a hand-checked unit test and the trainer, the evaluation and the benchmarks run
the same code. This layer imports nothing else from lcpo except :mod:`lcpo.errors`.
"""
