"""Batched generation (``Scorer.generate``) against HF ``model.generate(do_sample=False)`` one prompt at a
time, token for token: on tiny offline models (shared-prefix path and left-padded plain path, with and
without stop rules) and on real SmolLM2-135M-Instruct output (skipped when its conversion is absent).
The stop rules of the prompt formats (``audit.prompts.stopping``) and the runner's use of them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from audit.backends.hf.loading import LoadedModel
from audit.backends.hf.scorer import Scorer
from audit.backends.hf.tokenization import _encode_many
from audit.prompts.render import render_prompt
from audit.prompts.stopping import FREE_TEXT, REASONING, SHORT_ANSWER, StopRule, rule_for_prompt
from test_scoring import ITEMS, SHOTS, gpt2, llama  # noqa: F401  (fixtures: the tiny GPT-2 and Llama of the scoring tests)
from tests.shared_data import needed


def _prompts() -> list[str]:
    """Mixed lengths and formats: shots (a long shared prefix), chain of thought, bare cloze, odd ones."""
    out = [render_prompt("zero_shot", it, SHOTS).text for it in ITEMS[:4]]
    out += [render_prompt("chain_of_thought", it).text for it in ITEMS[4:6]]
    out += [render_prompt("intrinsic", it).text for it in ITEMS[6:8]]
    return out + ["The nurse", "Instruction: Read"]


def hf_one_at_a_time(lm: LoadedModel, prompt: str, max_new_tokens: int, stop: StopRule | None = None) -> list[int]:
    """HF greedy tokens of one prompt (tokenised as the engine does), up to the first EOS or, with
    ``stop``, the first token after which ``stop.cut`` says the text is complete."""
    ids = torch.tensor([_encode_many(lm.tokenizer, [prompt])[0]])
    out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                            pad_token_id=lm.tokenizer.pad_token_id)
    eos = lm.model.generation_config.eos_token_id
    eos = set(eos) if isinstance(eos, (list, tuple)) else {eos}
    tokens: list[int] = []
    for token in out[0, ids.shape[1]:].tolist():
        tokens.append(token)
        if token in eos or (stop is not None and stop.cut(lm.tokenizer.decode(tokens, skip_special_tokens=True))[0]):
            break
    return tokens


@pytest.mark.parametrize("name", ["gpt2", "llama"])
@pytest.mark.parametrize("path", ["shared_prefix", "left_padded"])
def test_tokens_equal_hf_generate_one_prompt_at_a_time(name, path, request):
    lm = request.getfixturevalue(name)
    prompts = _prompts()
    scorer = Scorer(lm, batch_size=4)
    if path == "left_padded":
        scorer.tree = False  # the path of models whose attention the shared-prefix scheme cannot express
    ours = scorer.generate_tokens(prompts, max_new_tokens=7)
    expected = [hf_one_at_a_time(lm, p, 7) for p in prompts]
    assert ours == expected
    assert scorer.generate(prompts, max_new_tokens=7) == [lm.tokenizer.decode(t, skip_special_tokens=True) for t in expected]
    assert scorer.stats.generated == 2 * len(prompts)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
@pytest.mark.parametrize("path", ["shared_prefix", "left_padded"])
def test_stopped_rows_are_hf_tokens_up_to_their_stop(name, path, request):
    """Rows end at different steps (they leave the batch); each is HF's sequence cut at its stop."""
    lm = request.getfixturevalue(name)
    prompts = _prompts()
    full = [hf_one_at_a_time(lm, p, 10) for p in prompts]
    # stop strings that really occur: the text of some rows' 3rd and 5th tokens
    words = {lm.tokenizer.decode(full[i][k:k + 1]).strip() for i, k in ((0, 2), (4, 4), (6, 1))}
    stop = StopRule(strings=tuple(w for w in words if w))
    expected = [hf_one_at_a_time(lm, p, 10, stop) for p in prompts]
    assert any(len(e) < len(f) for e, f in zip(expected, full)), "the stop strings must end some rows early"
    assert any(len(e) == 10 for e in expected), "and leave some running"
    scorer = Scorer(lm, batch_size=len(prompts))
    if path == "left_padded":
        scorer.tree = False
    assert scorer.generate_tokens(prompts, max_new_tokens=10, stop=stop) == expected
    texts = scorer.generate(prompts, max_new_tokens=10, stop=stop)
    assert texts == [stop.cut(lm.tokenizer.decode(e, skip_special_tokens=True))[1] for e in expected]
    assert not any(s in t for t in texts for s in stop.strings)


def test_batch_size_and_prefix_reuse_change_no_token(gpt2):
    prompts = _prompts()
    base = Scorer(gpt2, batch_size=1, prefix_cache=False).generate_tokens(prompts, 6, stop=REASONING)
    for bs in (2, 5, 32):
        assert Scorer(gpt2, batch_size=bs).generate_tokens(prompts, 6, stop=REASONING) == base


def test_texts_do_not_depend_on_batch_size_or_order(gpt2):
    """Packed prompt passes, groups of prompts with a common opening, rows leaving the batch: the same texts
    for any batch size and any order of the prompts (a repeated prompt included)."""
    import random

    prompts = _prompts() + [render_prompt("zero_shot", it, SHOTS).text for it in ITEMS[8:12]] + _prompts()[:2]
    base = Scorer(gpt2, batch_size=3).generate(prompts, 8, stop=REASONING)
    assert base == [gpt2.tokenizer.decode(hf_one_at_a_time(gpt2, p, 8, REASONING), skip_special_tokens=True)
                    for p in prompts]
    shuffled = list(range(len(prompts)))
    random.Random(7).shuffle(shuffled)
    for bs in (1, 32):
        texts = Scorer(gpt2, batch_size=bs).generate([prompts[i] for i in shuffled], 8, stop=REASONING)
        assert texts == [base[i] for i in shuffled], bs


def test_decoding_memory_is_bounded_by_generation_tokens(gpt2, monkeypatch):
    """A decoding batch's key/value memory (slots x columns and one copy of the shared prefix,
    ``decoding.DecodingSlots``) stays within the scorer's
    ``generation_tokens``: long prompts and budgets decode in fewer rows, the rest refilled into freed slots; the
    tokens are HF's one prompt at a time whatever the bound; the buffers go when the call returns."""
    from audit.backends.hf import decoding

    import gc
    import weakref

    made, alive = [], []
    real = decoding.DecodingSlots.__init__

    def spy(self, slots, capacity, prefix_kv, m, device):
        made.append((slots, capacity, m))
        alive.append(weakref.ref(self))
        real(self, slots, capacity, prefix_kv, m, device)

    monkeypatch.setattr(decoding.DecodingSlots, "__init__", spy)
    prompts = _prompts() + [render_prompt("zero_shot", it, SHOTS).text for it in ITEMS[8:12]]
    expected = [hf_one_at_a_time(gpt2, p, 9, REASONING) for p in prompts]
    for bound in (10_000, 400, 1):
        scorer = Scorer(gpt2, batch_size=32, generation_tokens=bound)
        assert scorer.generate_tokens(prompts, 9, stop=REASONING) == expected, bound
        slots, capacity, m = made[-1]
        longest = max(len(s) for s in _encode_many(gpt2.tokenizer, prompts))
        assert capacity == longest - m + 9  # the longest prompt's own tokens and the budget (the prefix held once)
        assert slots == max(1, min(32, len(prompts), (bound - m) // capacity)), bound
        assert slots * capacity + m <= bound or slots == 1
    assert made[0][0] == len(prompts) and made[-1][0] == 1  # the bound decides the rows
    gc.disable()  # the buffers are freed when the call returns, not at the next cyclic collection
    try:
        Scorer(gpt2, batch_size=4).generate_tokens(prompts[:5], 3)
        assert alive[-1]() is None
    finally:
        gc.enable()


def test_prompts_with_a_common_opening_run_it_once(gpt2):
    """Two groups of prompts sharing their item text beyond the instruction: fewer positions computed than
    prompt tokens, and the tokens of HF one prompt at a time."""
    items = [render_prompt("chain_of_thought", it).text for it in ITEMS[:3]]
    prompts = [p + tail for p in items for tail in (" Yes", " No, because", " Maybe")]
    scorer = Scorer(gpt2, batch_size=32)
    ours = scorer.generate_tokens(prompts, 5)
    assert ours == [hf_one_at_a_time(gpt2, p, 5) for p in prompts]
    prompt_tokens = sum(len(s) for s in _encode_many(gpt2.tokenizer, prompts))
    item_tokens = sum(len(s) for s in _encode_many(gpt2.tokenizer, items))
    assert scorer.stats.tokens - sum(len(t) - 1 for t in ours) < prompt_tokens - item_tokens


def test_prompt_groups_save_tokens_and_keep_one_token_each():
    from audit.backends.hf.planning import prompt_groups

    rests = [[1, 2, 3, 4], [5, 6], [1, 2, 3, 9, 9], [1, 2, 7], [1, 2, 3]]
    groups = prompt_groups(rests, share=True, max_width=100)
    assert sorted(i for _, members in groups for i in members) == list(range(5))
    # in token order [1,2,3] [1,2,3,4] [1,2,3,9,9] [1,2,7]: 2 shared ([1,2,3] keeps its last token), [5,6] alone
    assert groups == [(2, [4, 0, 2, 3]), (1, [1])]
    assert all(s < len(rests[i]) for s, members in groups for i in members)
    assert prompt_groups(rests, share=False, max_width=100) == [(len(rests[i]) - 1, [i]) for i in (4, 0, 2, 3, 1)]
    assert all(len(m) == 1 for _, m in prompt_groups(rests, share=True, max_width=4))


# --------------------------------------------------------------------------- stop rules


@pytest.mark.parametrize("fmt, rule, fields", [
    ("chain_of_thought", REASONING, ("\nInstruction:", "\nSentence:", "\nQuestion:")),
    ("_stage1_explain", FREE_TEXT, ("\nInstruction:", "\nSentence:", "\nQuestion:")),
    ("intrinsic", SHORT_ANSWER, ()), ("zero_shot", SHORT_ANSWER, ())])
def test_each_winobias_format_gets_its_rule(fmt, rule, fields):
    got = rule_for_prompt(render_prompt(fmt, ITEMS[0], SHOTS[:2] if fmt == "zero_shot" else []).text)
    assert got == replace(rule, strings=rule.strings + fields)


def test_bbq_formats_get_their_rules():
    cot = rule_for_prompt("Context: x\nQuestion: y?\nOptions: (a) 1 (b) 2\nAnswer: Let's think step by step.")
    assert cot == replace(REASONING, strings=("\n\n", "\nContext:", "\nQuestion:", "\nOptions:"))
    assert rule_for_prompt("Q: Who?\nA:") == SHORT_ANSWER
    assert rule_for_prompt("Options: (a) x\nExplanation:") == replace(FREE_TEXT, strings=("\n\n", "\nOptions:"))


@pytest.mark.parametrize("rule, text, expected", [
    (REASONING, " The nurse is tired. So the answer is the nurse.\nSentence: more", (True, " The nurse is tired. So the answer is the nurse.")),
    (REASONING, " The pronoun refers to the nurse.\n\nSentence: next", (True, " The pronoun refers to the nurse.")),
    (REASONING, " The answer is", (False, " The answer is")),
    (REASONING, ' So the answer is "The guard."', (True, ' So the answer is "The guard.')),
    (SHORT_ANSWER, " guard.\n\nIn this", (True, " guard")),
    (SHORT_ANSWER, " accountant, and the", (False, " accountant, and the")),
    (SHORT_ANSWER, "\n", (False, "\n")),  # whitespace the model starts with does not end it
    (SHORT_ANSWER, "\n nurse.", (True, "\n nurse")),
    (replace(REASONING, strings=("\n\n", "\nContext:")), "\n\nContext: a new example", (True, "\n")),
    (REASONING, "\n\nThe answer is (c) The Zoomer is kind. More", (True, "\n\nThe answer is (c) The Zoomer is kind.")),
    (FREE_TEXT, " It assumes.\n\nSentence", (True, " It assumes.")),
])
def test_cut(rule, text, expected):
    assert rule.cut(text) == expected


def test_budget_is_the_condition_s_within_the_format_s():
    assert SHORT_ANSWER.tokens(4) == 4 and SHORT_ANSWER.tokens(32) == SHORT_ANSWER.budget
    assert REASONING.tokens(48) == 48


def test_a_backend_without_early_stopping_gives_the_same_texts(gpt2):
    """The base ``generate_until`` (generate the budget, then cut) and the engine's early stop agree."""
    from audit.backends.base import Backend
    from audit.backends.hf.backend import HFBackend

    hf = HFBackend(gpt2, batch_size=4, progress=False)
    prompts = _prompts()
    stop = StopRule(strings=tuple({gpt2.tokenizer.decode(t[1:2]) for t in Scorer(gpt2).generate_tokens(prompts[:3], 3)}))
    assert Backend.generate_until(hf, prompts, 9, stop) == hf.generate_until(prompts, 9, stop)


# --------------------------------------------------------------------------- real model output (SmolLM2-135M)

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_generations.json"
RECORDS = json.loads(FIXTURE.read_text())
# the parser's known misreadings of real output, each with the reason (the test fails if one starts to pass)
KNOWN_MISREAD = {("bbq_chain_of_thought", "Age-1059"): "a reasoning cut by the budget names an option first; "
                 "the parser cannot tell a reasoning that gave no answer from a short answer"}


@pytest.fixture(scope="module")
def smollm2():
    from smollm2 import load_smollm2

    return needed(load_smollm2(), "the SmolLM2-135M conversion is not cached (tests/test_llama_server.py makes it)")


def _parse(record: dict):
    if record["dataset"] == "winobias":
        from audit.datasets.winobias.answers import map_answer

        return map_answer(record["output"], tuple(record["item"]["candidates"]))
    from audit.datasets.bbq.answers import map_bbq_answer
    from audit.datasets.bbq.items import BBQItem

    item = BBQItem.__new__(BBQItem)  # the parser reads the answers and which one is unknown
    answers = tuple(record["item"]["answers"])
    object.__setattr__(item, "answers", answers)
    object.__setattr__(item, "unknown_index", record["item"]["unknown_index"])
    return map_bbq_answer(record["output"], item)


def test_the_fixture_is_labelled_and_covers_every_generation_format():
    assert all("expected" in r for r in RECORDS) and len(RECORDS) >= 30
    assert {r["format"] for r in RECORDS} >= {"chain_of_thought", "intrinsic", "zero_shot", "_stage1_explain",
                                            "bbq_chain_of_thought", "bbq_intrinsic"}


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r['format']}-{r['item']['id']}")
def test_one_parser_reads_real_smollm2_output(record):
    got = _parse(record)
    if (record["format"], record["item"]["id"]) in KNOWN_MISREAD:
        assert got != record["expected"]
    else:
        assert got == record["expected"], record.get("note", "")


def test_fixture_outputs_are_what_the_engine_generates_now(smollm2):
    """Batched, shared prefix, stop rules: the fixture's texts again (WinoBias and BBQ prompts)."""
    from audit.prompts.stopping import rule_for_prompt

    scorer = Scorer(smollm2, batch_size=8, progress=False)
    for fmt in dict.fromkeys(r["format"] for r in RECORDS):
        group = [r for r in RECORDS if r["format"] == fmt]
        rule = rule_for_prompt(group[0]["prompt"])
        texts = scorer.generate([r["prompt"] for r in group], rule.tokens(group[0]["max_new_tokens"]), stop=rule)
        assert texts == [r["output"] for r in group], fmt


@pytest.mark.parametrize("fmt", ["chain_of_thought", "_stage1_explain", "bbq_chain_of_thought", "zero_shot"])
def test_smollm2_tokens_equal_hf_generate_one_prompt_at_a_time(smollm2, fmt):
    from audit.prompts.stopping import rule_for_prompt

    group = [r for r in RECORDS if r["format"] == fmt][:4]
    prompts = [r["prompt"] for r in group]
    rule = rule_for_prompt(prompts[0])
    budget = rule.tokens(group[0]["max_new_tokens"])
    ours = Scorer(smollm2, batch_size=4, progress=False).generate_tokens(prompts, budget, stop=rule)
    assert ours == [hf_one_at_a_time(smollm2, p, budget, rule) for p in prompts]


# --------------------------------------------------------------------------- the runner


class _GenerateOnly:
    """A plugin-style backend that knows only ``generate`` (no stop rules): it rambles past every answer."""

    def __init__(self):
        from audit.backends.base import Backend

        class Rambler(Backend):
            name = "rambler"
            asked: list = []

            def loglikelihood(self, requests):
                return [-1.0] * len(requests)

            def generate(self, prompts, max_new_tokens=16):
                self.asked.append(max_new_tokens)
                return [" The answer is the nurse. Then more.\n\nSentence: another example"] * len(prompts)

            def identity(self):
                return {"model": "rambler"}

        self.backend = Rambler()


@pytest.mark.parametrize("condition, expected, budget", [
    ("chain_of_thought", " The answer is the nurse.", 48),
    ("intrinsic_generation", " The answer is the nurse", 4),
])
def test_conditions_cut_generations_at_the_format_s_answer(condition, expected, budget):
    from audit.config import load_config
    from audit.datasets import get_dataset
    from audit.run.conditions import run_condition

    ds = get_dataset("winobias")
    items = ds.load("generated", split="test", seed=0)[:6]
    cond = load_config(preset="study").conditions[condition]
    fake = _GenerateOnly().backend
    run = run_condition(fake, ds, condition, cond, items, ds.load("generated", split="dev", seed=0))
    assert run.outputs == [expected] * len(items)
    assert fake.asked == [budget]
