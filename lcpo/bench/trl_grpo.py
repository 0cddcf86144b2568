"""TRL's GRPOTrainer on the race's settings: ``python -m lcpo.bench.trl_grpo SETTINGS.json OUT.json``.

Run by ``lcpo.bench.race`` in its own process (needs the ``bench`` extra). ``SETTINGS.json`` (written by the race
from the composed lcpo config) names the model folder, the prompts file (the exact prompt strings lcpo's stream
builds, in order, with their answers and budgets) and the optimisation settings; TRL is configured to do the same
work: one generation of ``prompts x samples`` completions per step, one optimiser step on it (one micro-batch), no
KL, no gradient checkpointing, fp32 like lcpo on a CPU, the same reward (lcpo's grader and reward function).
``OUT.json`` gets the wall time of every step (``on_step_begin`` to ``on_step_end``: generation, scoring,
forward, backward and optimiser step) and the mean completion length TRL logged.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch


def main(argv: Sequence[str] | None = None) -> dict:
    settings_path, out_path = (sys.argv[1:] if argv is None else list(argv))[:2]
    s = json.loads(Path(settings_path).read_text())
    torch.set_num_threads(s["threads"])
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from lcpo.config import RewardConfig
    from lcpo.algo.grading import Grader
    from lcpo.algo.budgets import BudgetSpec
    from lcpo.algo.rewards import RewardInputs
    from lcpo.config.reward import build_reward
    from lcpo.models.tiny import load_tokenizer

    grader = Grader(kind="math", workers=s["grading_workers"])
    reward = build_reward(RewardConfig(**s["reward"]))

    def lcpo_reward(prompts, completions, completion_ids, answer, mode, budget, **_) -> list[float]:
        grades = grader.grade_many(list(completions), list(answer))
        inputs = RewardInputs.build(
            correct=[g.correct for g in grades], specs=[BudgetSpec(m, b) for m, b in zip(mode, budget)],
            lengths=[len(ids) for ids in completion_ids], max_length=s["max_new_tokens"], groups=[0] * len(grades),
        )
        return reward(inputs).tolist()

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    rows = [json.loads(line) for line in Path(s["prompts"]).read_text().splitlines()]
    tokenizer = load_tokenizer(s["model"])
    model = AutoModelForCausalLM.from_pretrained(s["model"], dtype=torch.float32, local_files_only=True)
    batch = s["prompts_per_step"] * s["group_size"]
    with tempfile.TemporaryDirectory(prefix="lcpo-race-trl-") as tmp:
        config = GRPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=batch,  # completions per step: one micro-batch, as lcpo's race settings
            gradient_accumulation_steps=1,
            num_generations=s["group_size"],
            num_iterations=1,
            max_completion_length=s["max_new_tokens"],
            temperature=s["temperature"],
            top_p=1.0,
            top_k=0,
            beta=0.0,
            epsilon=s["clip_low"],
            epsilon_high=s["clip_high"],
            loss_type="dapo",  # normalised by the batch's response tokens: lcpo's token_mean
            scale_rewards="group",
            learning_rate=s["lr"],
            weight_decay=s["weight_decay"],
            adam_beta1=s["betas"][0],
            adam_beta2=s["betas"][1],
            max_grad_norm=s["grad_clip"],
            lr_scheduler_type="constant",
            max_steps=s["steps"],
            gradient_checkpointing=False,
            bf16=False,
            use_cpu=True,
            shuffle_dataset=False,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=s["seed"],
        )
        timer = StepTimer()
        trainer = GRPOTrainer(
            model=model, reward_funcs=lcpo_reward, args=config, train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer, callbacks=[timer],
        )
        trainer.train()
    lengths = [log["completions/mean_length"] for log in trainer.state.log_history if "completions/mean_length" in log]
    result = {"step_seconds": timer.seconds, "mean_length": lengths}
    Path(out_path).write_text(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
