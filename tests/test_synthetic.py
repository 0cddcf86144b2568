"""The synthetic task: deterministic problems, traces the project's grader accepts, verbosity blind to budgets."""

import random

import pytest

from lcpo.budgets import BudgetSampler, BudgetSpec, UniformBudget
from lcpo.config import PromptConfig, SyntheticTaskConfig
from lcpo.grading import grade
from lcpo.tasks.synthetic import SyntheticTask, response_tokens
from lcpo.tiny import build_tokenizer


def test_traces_grade_correct_and_shortcut_answers_do_not():
    task = SyntheticTask()
    rng = random.Random(0)
    for problem in task.eval_set(50, seed=1):
        response = task.trace(problem, checks=rng.randint(0, 5))
        assert response.startswith("<think>") and "</think>" in response
        assert grade(response, problem.answer)
        wrong = str((int(problem.answer) + 1) % 10)
        assert not grade(response.replace(f"\\boxed{{{problem.answer}}}", f"\\boxed{{{wrong}}}"), problem.answer)


def test_steps_compute_the_running_sum_modulo():
    task = SyntheticTask(SyntheticTaskConfig(min_terms=3, max_terms=3))
    problem = task.sample(random.Random(0))
    terms = problem.meta["terms"]
    assert problem.question == f"{terms[0]}+{terms[1]}+{terms[2]} mod 10 = ?"
    assert problem.answer == str(sum(terms) % 10)
    assert len(task.steps(problem)) == 2
    assert task.steps(problem)[-1].endswith(f"={problem.answer}")


def test_distinct_terms_do_not_repeat():
    task = SyntheticTask(SyntheticTaskConfig(min_terms=6, max_terms=6, distinct=True))
    rng = random.Random(0)
    assert all(len(set(task.sample(rng).meta["terms"])) == 6 for _ in range(50))


def test_eval_set_is_deterministic_given_seed():
    task = SyntheticTask()
    assert task.eval_set(20, seed=7) == task.eval_set(20, seed=7)
    assert task.eval_set(20, seed=7) != task.eval_set(20, seed=8)
    assert len(task.eval_set(None, seed=0)) == task.cfg.eval_size


def test_each_check_adds_a_fixed_number_of_tokens():
    task, tok = SyntheticTask(), build_tokenizer()
    problem = task.sample(random.Random(3))
    lengths = [len(tok(task.trace(problem, checks=k))["input_ids"]) for k in range(4)]
    assert len({b - a for a, b in zip(lengths, lengths[1:])}) == 1  # "check a+b=c\n": single digits, mod 10


@pytest.mark.parametrize(
    "style, spec, line",
    [
        ("restate", BudgetSpec("exact", 55), "ck 3/55="),
        ("restate", BudgetSpec("max", 35), "ck 3<35="),
        ("countdown", BudgetSpec("exact", 75), "ck 3:20="),  # 25 tokens + 3 lines of 10 leave 20 of 75
        ("countdown", BudgetSpec("max", 35), "ck 3<00="),  # overspent: clamped at zero
        ("countdown", BudgetSpec("none", None), "check 3="),
    ],
)
def test_check_lines_carry_the_budget_at_the_same_length(style, spec, line):
    task, tok = SyntheticTask(SyntheticTaskConfig(budget_in_trace=style)), build_tokenizer()
    problem = task.sample(random.Random(5))
    response = task.trace(problem, checks=3, budget=spec)
    assert f"{line}{problem.answer}\n" in response
    assert grade(response, problem.answer)
    plain = task.trace(problem, checks=3)
    assert len(tok(response)["input_ids"]) == len(tok(plain)["input_ids"])
    assert SyntheticTask(SyntheticTaskConfig(budget_in_trace="none")).trace(problem, checks=3, budget=spec) == plain


def test_countdown_reaches_zero_where_the_response_meets_its_budget():
    task, tok = SyntheticTask(SyntheticTaskConfig(budget_in_trace="countdown")), build_tokenizer()
    problem = task.sample(random.Random(2))
    for checks in range(1, 6):
        response = task.trace(problem, checks=checks, budget=BudgetSpec("exact", 40))
        length = len(tok(response)["input_ids"]) + 1  # + EOS
        assert response_tokens(response) == length
        last = response.split("\n")[1 + checks]
        assert last.startswith(f"ck {checks}:{max(40 - length, 0):02d}=")


def test_budget_in_trace_is_validated():
    with pytest.raises(ValueError, match="budget_in_trace"):
        SyntheticTaskConfig(budget_in_trace="always")


def test_warmstart_trace_length_ignores_the_prompt_budget():
    """The budget sentence and the trace come from separate draws: trace lengths do not follow budgets."""
    from lcpo.warmstart import TraceStream

    tok = build_tokenizer()
    template = PromptConfig(instruction="")
    stream = TraceStream(
        SyntheticTask(), lambda p, s: template.render(p.question, s) + "\n",
        BudgetSampler(UniformBudget(30, 99)), tok, batch_size=1, verbosity=(0, 9),
    )
    rng = random.Random(0)
    budgets, lengths = [], []
    for _ in range(400):
        prompt, response = stream.example(rng)
        budgets.append(int(tok.decode(prompt).split("Think for ")[1].split()[0]))
        lengths.append(len(response))
    n = len(budgets)
    mb, ml = sum(budgets) / n, sum(lengths) / n
    cov = sum((b - mb) * (l - ml) for b, l in zip(budgets, lengths))
    var = (sum((b - mb) ** 2 for b in budgets) * sum((l - ml) ** 2 for l in lengths)) ** 0.5
    assert abs(cov / var) < 0.15
    assert max(lengths) - min(lengths) == 90  # 0 to 9 check lines of 10 tokens: a wide spread for RL


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="min_terms"):
        SyntheticTaskConfig(min_terms=5, max_terms=3)
    with pytest.raises(ValueError, match="distinct"):
        SyntheticTaskConfig(max_terms=12, max_value=9, distinct=True)
