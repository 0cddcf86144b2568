"""Which response tokens the loss leaves out: character spans to tokens, and the collector's response mask."""

from lcpo.algo.budgets import BudgetSpec
from lcpo.models.tiny import build_tokenizer
from lcpo.rollout.base import Completion
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.training.bookkeeping import BookkeepingTokens, tokens_within


def test_a_token_is_left_out_only_when_its_text_lies_inside_a_span():
    ends = [1, 3, 4, 7, 7]  # tokens cover 0-1, 1-3, 3-4, 4-7 and an empty one at 7
    assert tokens_within(ends, [(1, 4)]) == [1, 2]
    assert tokens_within(ends, [(1, 5)]) == [1, 2]  # 4-7 straddles the span's end
    assert tokens_within(ends, [(0, 1), (4, 7)]) == [0, 3]  # the empty token is never left out
    assert tokens_within(ends, []) == []


def test_the_countdown_tokens_of_a_trace_are_found_in_its_token_ids():
    tokenizer, task = build_tokenizer(), SyntheticTask()
    problem = task.eval_set(1, seed=2)[0]
    text = task.trace(problem, checks=[2], budget=BudgetSpec("max", 70))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    completion = Completion(prompt_ids=[], token_ids=ids, text=tokenizer.decode(ids, skip_special_tokens=True),
                            finish_reason="eos")
    left_out = BookkeepingTokens(tokenizer, task.bookkeeping_spans)(completion)
    counts = [text[a:b] for a, b in task.bookkeeping_spans(text)]
    assert tokenizer.decode([ids[i] for i in left_out]) == "".join(counts)
    assert len(left_out) == 3 * len(counts) > 0


class SpacedTokenizer:
    """Decodes ids to words joined by spaces: a token decoded alone does not spell its place in the text."""

    words = ["alpha", "beta", "gamma"]

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(self.words[i] for i in ids)


def test_token_ends_fall_back_to_prefixes_when_pieces_do_not_spell_the_text():
    tokens = BookkeepingTokens(SpacedTokenizer(), lambda text: [(text.index("beta"), text.index("beta") + 4)])
    completion = Completion(prompt_ids=[], token_ids=[0, 1, 2], text="alpha beta gamma", finish_reason="eos")
    assert tokens.token_ends(completion.token_ids, completion.text) == [5, 10, 16]
    assert tokens(completion) == []  # " beta" (5-10) starts at the space, outside the span
    wide = BookkeepingTokens(SpacedTokenizer(), lambda text: [(5, 10)])
    assert wide(completion) == [1]


def test_a_training_run_on_the_synthetic_task_leaves_its_countdown_out_unless_asked(compose_train, tmp_path):
    from lcpo.models.tiny import build_tiny
    from lcpo.tasks import build_task
    from lcpo.training.build import build_collector

    text = SyntheticTask().trace(SyntheticTask().eval_set(1, seed=0)[0], budget=BudgetSpec("exact", 50))
    lines = len(text.split("</think>")[0].splitlines())
    left_out = {}
    for flag in ("false", "true"):
        cfg = compose_train("model=tiny", f"task.synthetic.countdown_gradient={flag}", output_dir=tmp_path)
        policy, tokenizer = build_tiny(cfg.model.tiny)
        collector = build_collector(cfg, policy, tokenizer, build_task(cfg.task))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        left_out[flag] = collector.bookkeeping(Completion(prompt_ids=[], token_ids=ids, text=text, finish_reason="eos"))
    assert len(left_out["false"]) == 3 * lines and left_out["true"] == []
