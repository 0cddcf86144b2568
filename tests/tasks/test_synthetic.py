"""The synthetic task: labelled problems, step and check lines, countdown, early stops, lengths blind to budgets."""

import random

import pytest

from lcpo.algo.budgets import BudgetSpec
from lcpo.config import SyntheticTaskConfig
from lcpo.algo.grading import grade
from lcpo.tasks.synthetic import SyntheticTask, response_tokens
from lcpo.models.tiny import build_tokenizer
from lcpo.cli.warmstart import scatter_checks

COUNTDOWN, NONE = SyntheticTaskConfig(budget_in_trace="countdown"), SyntheticTaskConfig(budget_in_trace="none")


def problem_with(terms, cfg=COUNTDOWN):
    """The problem of ``terms`` as the task would draw it (found by sampling with a fixed seed)."""
    task = SyntheticTask(SyntheticTaskConfig(min_terms=len(terms), max_terms=len(terms), budget_in_trace=cfg.budget_in_trace))
    rng = random.Random(0)
    for _ in range(100_000):
        p = task.sample(rng)
        if p.meta["terms"] == tuple(terms):
            return task, p
    raise AssertionError("not drawn")


def thinking_lines(response: str) -> list[str]:
    return response.split("</think>")[0].removeprefix("<think>").splitlines()


def test_terms_are_labelled_down_to_a_and_the_answer_is_their_sum_mod_10():
    task = SyntheticTask(SyntheticTaskConfig(min_terms=2, max_terms=7))
    for p in task.eval_set(50, seed=3):
        terms = p.meta["terms"]
        labels = [t[0] for t in p.question.split(" mod ")[0].split()]
        assert labels == [chr(ord("A") + i) for i in reversed(range(len(terms)))]
        assert p.answer == str(sum(terms) % 10)


def test_step_lines_name_their_term_and_carry_the_running_sum():
    task, p = problem_with((4, 7, 5))
    assert p.question == "C4 B7 A5 mod 10"
    assert thinking_lines(task.trace(p)) == ["+C4=4", "+B7=1", "+A5=6"]  # no budget: no count


def test_full_traces_grade_correct_and_other_answers_do_not():
    task = SyntheticTask()
    rng = random.Random(0)
    for p in task.eval_set(50, seed=1):
        checks = scatter_checks(rng.randint(0, 6), len(p.meta["terms"]), rng)
        response = task.trace(p, checks, BudgetSpec("exact", rng.randint(30, 99)))
        assert response.startswith("<think>") and grade(response, p.answer)
        wrong = str((int(p.answer) + 1) % 10)
        assert not grade(response.replace(f"\\boxed{{{p.answer}}}", f"\\boxed{{{wrong}}}"), p.answer)


def test_check_lines_restate_the_step_before_them_at_the_same_length():
    task, p = problem_with((4, 7, 5))
    lines = thinking_lines(task.trace(p, checks=(0, 2, 1), budget=BudgetSpec("exact", 90)))
    assert [line[:5] for line in lines] == ["+C4=4", "+B7=1", "?B7=1", "?B7=1", "+A5=6", "?A5=6"]
    assert len({len(line) for line in lines}) == 1


@pytest.mark.parametrize("cfg, line", [(COUNTDOWN, 10), (NONE, 6)])
def test_lengths_move_in_whole_lines_and_ignore_the_budget(cfg, line):
    task, tok = SyntheticTask(cfg), build_tokenizer()
    p = task.sample(random.Random(3))
    k = len(p.meta["terms"])
    for budget in (BudgetSpec("exact", 35), BudgetSpec("max", 90), BudgetSpec("exact", 99)):
        for checks in range(4):
            response = task.trace(p, [checks] + [0] * (k - 1), budget)
            n = len(tok(response)["input_ids"]) + 1  # + EOS
            assert n == response_tokens(response) == 13 + line * (k + checks)
    assert task.length_grid(BudgetSpec("exact", 50)) == (13, line)


def test_the_count_is_what_the_budget_would_leave_if_thinking_ended_after_the_line():
    task, tok = SyntheticTask(COUNTDOWN), build_tokenizer()
    _, p = problem_with((4, 7, 5))
    budget = 75
    response = task.trace(p, checks=(1, 0, 2), budget=BudgetSpec("exact", budget))
    head = "<think>"
    for line in thinking_lines(response):
        head += line + "\n"
        ended = head + "</think>\n\\boxed{0}"
        left = budget - (len(tok(ended)["input_ids"]) + 1)
        assert line.endswith(f", {max(left, 0):02d}")
    assert thinking_lines(response)[-1].endswith(", 02")  # 13 + 6 lines of 10 tokens = 73 of 75


def test_max_budgets_are_marked_and_counts_clamp_at_zero():
    task, p = problem_with((4, 7, 5))
    lines = thinking_lines(task.trace(p, checks=(2, 0, 0), budget=BudgetSpec("max", 45)))
    assert [line[-3:] for line in lines] == ["<22", "<12", "<02", "<00", "<00"]


def test_without_countdown_nothing_in_the_trace_depends_on_the_budget():
    task, p = problem_with((4, 7, 5), NONE)
    plain = task.trace(p, checks=(1, 0, 1))
    assert task.trace(p, (1, 0, 1), BudgetSpec("exact", 40)) == task.trace(p, (1, 0, 1), BudgetSpec("max", 90)) == plain


def test_an_early_stop_answers_the_partial_sum():
    task, p = problem_with((4, 7, 5))
    response = task.trace(p, checks=(0, 1, 0), budget=BudgetSpec("exact", 60), stop_after=3)
    assert [line[:5] for line in thinking_lines(response)] == ["+C4=4", "+B7=1", "?B7=1"]
    assert response.endswith("\\boxed{1}") and not grade(response, p.answer)
    with pytest.raises(ValueError, match="stop_after"):
        task.trace(p, stop_after=0)


def test_checks_must_match_the_steps():
    task, p = problem_with((4, 7, 5))
    with pytest.raises(ValueError, match="checks"):
        task.trace(p, checks=(0, 0, 0, 1))
    with pytest.raises(ValueError, match="checks"):
        task.trace(p, checks=(0, -1))


def test_eval_set_is_deterministic_given_seed():
    task = SyntheticTask()
    assert task.eval_set(20, seed=7) == task.eval_set(20, seed=7)
    assert task.eval_set(20, seed=7) != task.eval_set(20, seed=8)
    assert len(task.eval_set(None, seed=0)) == task.cfg.eval_size


def test_distinct_terms_do_not_repeat():
    task = SyntheticTask(SyntheticTaskConfig(min_terms=6, max_terms=6, distinct=True))
    rng = random.Random(0)
    assert all(len(set(task.sample(rng).meta["terms"])) == 6 for _ in range(50))


@pytest.mark.parametrize("zero_share", [0.0, 0.5])
def test_early_answers_are_right_as_often_as_the_best_policy_assumes(zero_share):
    """A digit is 0 with chance ``zero_share``, else uniform; the running sum with ``r`` steps left is the answer as
    often as ``lcpo.eval.optimum.stop_chance`` says (0.1 for uniform digits, more with zeros, less with more left)."""
    from lcpo.eval.optimum import stop_chance

    task = SyntheticTask(SyntheticTaskConfig(min_terms=4, max_terms=4, zero_share=zero_share))
    rng = random.Random(0)
    problems = [task.sample(rng) for _ in range(4000)]
    zeros = sum(t == 0 for p in problems for t in p.meta["terms"]) / (4 * len(problems))
    assert abs(zeros - (zero_share + (1 - zero_share) / 10)) < 0.02
    for left in (1, 2, 3):
        right = sum(task.steps(p)[3 - left][1] == int(p.answer) for p in problems) / len(problems)
        assert abs(right - stop_chance(left, 9, 10, zero_share)) < 0.03, (left, right)


@pytest.mark.parametrize(
    "kwargs, key",
    [({"min_terms": 5, "max_terms": 3}, "min_terms"), ({"max_terms": 27}, "max_terms"),
     ({"max_value": 12}, "one-digit"), ({"max_terms": 12, "distinct": True}, "distinct"),
     ({"budget_in_trace": "restate"}, "budget_in_trace"), ({"eval_size": 0}, "eval_size"),
     ({"zero_share": 1.5}, "zero_share"), ({"zero_share": float("nan")}, "zero_share"),
     ({"distinct": True, "max_terms": 5, "zero_share": 0.5}, "zero_share=0")],
)
def test_bad_config_is_rejected(kwargs, key):
    with pytest.raises(ValueError, match=key):
        SyntheticTaskConfig(**kwargs)


def test_a_line_is_short_when_the_steps_left_no_longer_fit_the_budget():
    """After each line: would writing only the steps left overrun the budget? What the count and label show."""
    task, p = problem_with([4, 7, 5, 2])  # four steps: 13 + 10 * 4 = 53 tokens without check lines
    assert task.short_lines(p, [0, 0, 0, 0], BudgetSpec("exact", 53)) == [False] * 4  # just fits
    assert task.short_lines(p, [0, 0, 0, 0], BudgetSpec("exact", 52)) == [True, True, True, False]  # the last: done
    # two check lines after the first step spend 20 tokens: by the second check the steps left no longer fit 65
    assert task.short_lines(p, [2, 0, 0, 0], BudgetSpec("max", 65)) == [False, False, True, True, True, False]
    assert task.short_lines(p, [2], None) == [False] * 6
    for checks, budget in (([0, 0, 0, 0], 52), ([2, 0, 0, 0], 65)):
        response = task.trace(p, checks, BudgetSpec("exact", budget))
        for short, line in zip(task.short_lines(p, checks, BudgetSpec("exact", budget)), thinking_lines(response)):
            steps_left = "ABCD".index(line[1])  # the label: D has three steps after it
            assert short == (10 * steps_left > int(line.split(",")[1])), line  # the rule, as the line shows it


@pytest.mark.parametrize("mode", ["exact", "max"])
def test_the_countdown_is_what_the_loss_leaves_out(mode):
    task = SyntheticTask(COUNTDOWN)
    p = task.eval_set(1, seed=5)[0]
    response = task.trace(p, checks=[1], budget=BudgetSpec(mode, 60))
    spans = task.bookkeeping_spans(response)
    lines = thinking_lines(response)
    assert [response[a:b] for a, b in spans] == [line.split(",")[1] for line in lines]
    assert all(len(response[a:b]) == 3 for a, b in spans)
    assert SyntheticTask(SyntheticTaskConfig(countdown_gradient=True)).bookkeeping_spans(response) == []
    assert SyntheticTask(NONE).bookkeeping_spans(task.trace(p)) == []
