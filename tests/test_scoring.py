"""The scoring engine against lm-evaluation-harness and against its own plain path.

Models are built offline: tiny random GPT-2 and Llama models (weights scaled up so that scores
and greedy choices are far from ties) with a byte-level BPE trained on the generated items, so
that BPE merges across the prefix/query boundary really happen.
"""

from __future__ import annotations

import os

import pytest
import torch

from audit.backends.hf import scorer as scorer_module
from audit.backends.hf import tokenization
from audit.datasets.winobias.generated import generate_items
from audit.backends.hf.loading import LoadedModel
from audit import render_prompt
from audit.prompts.render import continuation
from audit import Request
from audit.backends.hf.planning import plan_shared_prefix, tree_mask
from audit.backends.hf.scorer import Scorer
from audit.backends.hf.tokenization import encode_pair, request_tokens

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

ITEMS = generate_items(0)
SHOTS = ITEMS[300:304]


def _bpe_tokenizer(bos: bool):
    """Byte-level BPE trained on the prompts; ``bos=True`` adds ``<s>`` in front as Llama tokenizers do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [render_prompt("zero_shot", it, SHOTS).text + " " + " ".join(it.candidates) for it in ITEMS[:200]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|endoftext|>", "<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def _scaled(model, factor: float = 4.0):
    """Random init is near-uniform; scale linear weights so that tokens are well separated."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "wpe" not in name:
                p.mul_(factor)
    return model.eval()


def _tiny_model(name: str, model_class, seed: int, factor: float, tok, **config) -> LoadedModel:
    """A random ``model_class`` on the test tokenizer ``tok`` (torch seed ``seed``), linear weights scaled by ``factor``."""
    torch.manual_seed(seed)
    cfg = model_class.config_class(vocab_size=len(tok), eos_token_id=tok.eos_token_id, **config)
    return LoadedModel(name, _scaled(model_class(cfg), factor), tok, torch.device("cpu"))


@pytest.fixture(scope="module")
def gpt2() -> LoadedModel:
    from transformers import GPT2LMHeadModel

    tok = _bpe_tokenizer(bos=False)
    return _tiny_model("tiny-gpt2", GPT2LMHeadModel, 0, 4.0, tok, n_positions=1024, n_embd=64, n_layer=2, n_head=4,
                       bos_token_id=tok.eos_token_id)


@pytest.fixture(scope="module")
def llama() -> LoadedModel:
    from transformers import LlamaForCausalLM

    tok = _bpe_tokenizer(bos=True)
    return _tiny_model("tiny-llama", LlamaForCausalLM, 1, 2.0, tok, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)


def _requests(n_items: int = 10, shots=SHOTS) -> list[Request]:
    """Two conditions (0 and k shots), two candidates per item, plus the odd ones out."""
    reqs = []
    for k in (0, len(shots)):
        for it in ITEMS[:n_items]:
            p = render_prompt("zero_shot", it, shots[:k])
            reqs += [Request(p.prefix, p.query, continuation(c)) for c in it.candidates]
    return reqs + [
        Request("", "", " nurse"),  # empty context: conditions on BOS/EOS, as lm-eval
        Request("", "The nurse said that", " she was tired"),  # empty prefix, multi-token continuation
        Request("Answer: ", "", "The nurse"),  # context of the prefix alone, trailing space moves
    ]


def _lm_eval(lm: LoadedModel, reqs: list[Request], batch_size: int = 4) -> list[float]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size)
    inst = [Instance("loglikelihood", {}, (r.context, r.continuation), i) for i, r in enumerate(reqs)]
    return [ll for ll, _ in hf.loglikelihood(inst, disable_tqdm=True)]


def _max_diff(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- lm-eval agreement


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_loglikelihood_agrees_with_lm_eval(name, request):
    lm = request.getfixturevalue(name)
    reqs = _requests()
    scorer = Scorer(lm, batch_size=8)
    ours = scorer.loglikelihood(reqs)
    theirs = _lm_eval(lm, reqs)
    assert _max_diff(ours, theirs) <= 1e-4
    assert scorer.stats.prefix_reuse > 0  # the fast path was really taken


def test_tokenisation_is_lm_evals(llama):
    """Same token ids as HFLM, BOS included, for ordinary, trailing-space and empty contexts."""
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=llama.model, tokenizer=llama.tokenizer, batch_size=1)
    tok = llama.tokenizer
    for ctx, cont in [("The nurse met the", " doctor"), ("Answer: The ", "nurse"), ("x", "")]:
        assert [list(x) for x in encode_pair(tok, ctx, cont)] == [list(x) for x in hf._encode_pair(ctx, cont)]
        assert request_tokens(tok, ctx, cont)[0][0] == tok.bos_token_id  # Llama-style BOS, as lm-eval adds it
    nurse = tok(" nurse", add_special_tokens=False)["input_ids"]
    assert request_tokens(tok, "", " nurse") == ([tok.bos_token_id], nurse)
    # batched tokenisation inside the scorer gives the same ids as one request at a time
    reqs = _requests(4)
    batched = tokenization.tokenize_requests(tok, reqs)
    assert batched == [request_tokens(tok, r.context, r.continuation) for r in reqs]


# --------------------------------------------------------------------------- invariances


def test_results_identical_for_batch_sizes_1_8_32(gpt2):
    reqs = _requests(12)
    runs = {bs: Scorer(gpt2, batch_size=bs).loglikelihood(reqs) for bs in (1, 8, 32)}

    def choices(scores):  # the audit's answer per item: the candidate with the higher log-likelihood
        return [scores[i] > scores[i + 1] for i in range(0, len(scores) - 3, 2)]

    assert choices(runs[1]) == choices(runs[8]) == choices(runs[32])
    assert _max_diff(runs[1], runs[8]) <= 1e-5
    assert _max_diff(runs[1], runs[32]) <= 1e-5


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_prefix_cache_path_equals_plain_path(name, request):
    lm = request.getfixturevalue(name)
    reqs = _requests(8)
    cached = Scorer(lm, batch_size=8)
    fast = cached.loglikelihood(reqs)
    no_prefix = Scorer(lm, batch_size=8, prefix_cache=False)
    plain = Scorer(lm, batch_size=8)
    plain.tree = False  # one right-padded row per request through the whole model, as lm-eval
    assert _max_diff(fast, no_prefix.loglikelihood(reqs)) <= 1e-5
    assert _max_diff(fast, plain.loglikelihood(reqs)) <= 1e-5
    # the prefix runs once per condition: far fewer tokens than the plain path
    assert cached.stats.tokens < 0.5 * plain.stats.tokens
    assert no_prefix.stats.prefix_reuse == 0 and cached.stats.prefix_reuse == len(reqs) - 2  # all with a prefix


def test_multi_token_candidates_share_one_row(gpt2):
    """Two multi-token continuations of one context: one row, each scored as if alone."""
    ctx = render_prompt("zero_shot", ITEMS[0], SHOTS)
    reqs = [Request(ctx.prefix, ctx.query, " construction worker"), Request(ctx.prefix, ctx.query, " nurse and cook")]
    scorer = Scorer(gpt2, batch_size=4)
    together = scorer.loglikelihood(reqs)
    assert scorer.stats.forward_passes == 2  # the prefix, then one row holding both candidates
    alone = [Scorer(gpt2, batch_size=1).loglikelihood([r])[0] for r in reqs]
    assert _max_diff(together, alone) <= 1e-5
    assert _max_diff(together, _lm_eval(gpt2, reqs)) <= 1e-4


# --------------------------------------------------------------------------- BPE boundary


def test_plan_shared_prefix_trims_and_falls_back():
    prefix = [5, 6, 7, 8]
    contexts = [[5, 6, 7, 8, 9], [5, 6, 7, 80, 9], [5, 60, 70, 80, 9], [5, 6]]
    shared, usable = plan_shared_prefix(prefix, contexts, slack=1)
    # the second context merged the last prefix token away: the shared run shrinks to 3 tokens;
    # the third diverges too far back and falls back; the fourth keeps its last token to itself
    assert (shared, usable) == (3, [True, True, False, False])
    assert plan_shared_prefix(prefix, contexts, slack=0) == (4, [True, False, False, False])
    assert plan_shared_prefix([], contexts) == (0, [False] * 4)
    # contexts that agree beyond the prefix string share those tokens too (but keep one each)
    assert plan_shared_prefix([1, 2], [[1, 2, 9, 9, 3, 5], [1, 2, 9, 9, 4, 5]]) == (4, [True, True])
    assert plan_shared_prefix([1, 2], [[1, 2, 9, 9], [1, 2, 9, 9, 4]]) == (3, [True, True])


def test_bpe_merge_across_the_prefix_boundary(gpt2, monkeypatch):
    tok = gpt2.tokenizer
    head = render_prompt("zero_shot", ITEMS[0], SHOTS).prefix + "Sentence: The nur"
    reqs = [Request(head, q, c) for q in ("se left.", "sery closed.", " and the cook.") for c in (" Yes", " No")]
    prefix_ids = tok(head)["input_ids"]
    merged = [tok(r.context)["input_ids"][: len(prefix_ids)] != prefix_ids for r in reqs]
    assert any(merged) and not all(merged)  # BPE merges across the boundary for some queries only
    theirs = _lm_eval(gpt2, reqs)

    trimmed = Scorer(gpt2, batch_size=4)
    assert _max_diff(trimmed.loglikelihood(reqs), theirs) <= 1e-4
    assert trimmed.stats.fallbacks == 0 and trimmed.stats.prefix_reuse == len(reqs)

    monkeypatch.setattr(scorer_module, "BOUNDARY_SLACK", 0)  # no trimming: merged requests take the plain path
    strict = Scorer(gpt2, batch_size=4)
    assert _max_diff(strict.loglikelihood(reqs), theirs) <= 1e-4
    assert strict.stats.fallbacks == sum(merged)


def test_empty_prefix(gpt2):
    reqs = [Request("", it.sentence + " Here, the", continuation(c)) for it in ITEMS[:4] for c in it.candidates]
    scorer = Scorer(gpt2, batch_size=3)
    assert _max_diff(scorer.loglikelihood(reqs), _lm_eval(gpt2, reqs)) <= 1e-4
    assert scorer.stats.prefix_reuse == 0 and scorer.stats.fallbacks == 0


def test_output_order_and_duplicates(gpt2):
    reqs = _requests(3)
    scores = Scorer(gpt2, batch_size=2).loglikelihood(reqs + reqs[::-1])
    assert scores[: len(reqs)] == scores[len(reqs) :][::-1]
    assert Scorer(gpt2).loglikelihood([]) == []


def test_tree_mask_hand_computed():
    # one row, shared prefix of 1 token; context 0: query q0 q1, continuation 1 (a0), continuation 2 (b0);
    # context 1 packed after it: query r0, continuation 1 (c0); then one pad
    units = torch.tensor([[0, 0, 0, 0, 1, 1, -1]])
    branches = torch.tensor([[0, 0, 1, 2, 0, 1, 0]])
    mask = tree_mask(units, branches, shared=1)[0, 0].int().tolist()
    assert mask == [
        [1, 1, 0, 0, 0, 0, 0, 0],  # q0
        [1, 1, 1, 0, 0, 0, 0, 0],  # q1
        [1, 1, 1, 1, 0, 0, 0, 0],  # a0 sees prefix, q0, q1, itself
        [1, 1, 1, 0, 1, 0, 0, 0],  # b0 does not see a0
        [1, 0, 0, 0, 0, 1, 0, 0],  # r0 sees the prefix, not context 0
        [1, 0, 0, 0, 0, 1, 1, 0],  # c0
        [0, 0, 0, 0, 0, 0, 0, 1],  # padding sees only itself
    ]


def test_packing_contexts_into_rows_changes_nothing(gpt2):
    reqs = _requests(8)
    one_per_row = Scorer(gpt2, batch_size=32, pack_tokens=1)
    packed = Scorer(gpt2, batch_size=32, pack_tokens=10_000)
    a, b = one_per_row.loglikelihood(reqs), packed.loglikelihood(reqs)
    assert _max_diff(a, b) <= 1e-5
    assert one_per_row.stats.tokens == packed.stats.tokens


def test_a_pass_of_long_contexts_holds_at_most_pass_tokens(gpt2, monkeypatch):
    """Contexts longer than a packed row each take a row of their own; a pass then stops at ``pass_tokens``
    positions (rows x the fullest row, padding included), not at ``batch_size`` contexts, so its activations
    stay one batch's (the study's two-stage prompts on SmolLM2: 14 rows of 329 tokens, +226 MB, before).
    The scores are those of one unbounded pass."""
    from audit.backends.hf import scorer as scorer_module
    from audit.backends.hf.planning import padded_tokens

    long_queries = [Request("Read the story, then answer. ", f"Story {i}: " + "the nurse met the doctor and " * 4, c)
                    for i in range(12) for c in (" she", " he")]
    bounded = Scorer(gpt2, batch_size=32, pack_tokens=16)  # pass_tokens = 32 x 16 / 4 = 128
    bound = bounded.pass_tokens
    assert bound == 128
    passes = []
    score_rows = scorer_module.Scorer._score_rows

    def spy(self, units, shared, prefix_kv, out):
        passes.append(padded_tokens([u.width(len(shared)) for u in units], self.pack_tokens) if len(units) > 1 else 0)
        return score_rows(self, units, shared, prefix_kv, out)

    monkeypatch.setattr(scorer_module.Scorer, "_score_rows", spy)
    capped = bounded.loglikelihood(long_queries)
    assert len(passes) > 1 and max(passes) <= bound  # several passes, each within the bound
    monkeypatch.setattr(scorer_module, "_PASS_SHARE", 1000.0)
    passes.clear()
    whole = Scorer(gpt2, batch_size=32, pack_tokens=16).loglikelihood(long_queries)
    assert len(passes) == 1 and passes[0] > bound  # the same contexts in one pass, past the bound
    assert _max_diff(capped, whole) <= 1e-5


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_generation_equals_hf_generate(name, request):
    lm = request.getfixturevalue(name)
    prompts = [render_prompt("zero_shot", it, SHOTS).text for it in ITEMS[:5]] + ["The nurse", "Instruction: Read"]
    scorer = Scorer(lm, batch_size=3)
    ours = scorer.generate(prompts, max_new_tokens=6)
    expected = []
    for prompt in prompts:
        ids = torch.tensor([lm.tokenizer(prompt)["input_ids"]])
        out = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
        expected.append(lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    assert ours == expected
    assert scorer.stats.generated == len(prompts)


# --------------------------------------------------------------------------- batch size, stats


def test_auto_batch_size_backs_off_on_out_of_memory(gpt2, monkeypatch):
    reqs = _requests(6)
    expected = Scorer(gpt2, batch_size=1).loglikelihood(reqs)
    scorer = Scorer(gpt2, batch_size="auto")
    scorer.batch_size = 8
    real = scorer._score_rows

    def picky(units, *args):
        if len(units) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(units, *args)

    monkeypatch.setattr(scorer, "_score_rows", picky)
    assert _max_diff(scorer.loglikelihood(reqs), expected) <= 1e-5
    assert scorer.batch_size == 2
    fixed = Scorer(gpt2, batch_size=8)
    monkeypatch.setattr(fixed, "_score_rows", picky)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        fixed.loglikelihood(reqs)


def test_loaded_with_a_device_map(gpt2, tmp_path):
    """A model placed by accelerate (device_map) scores the same as the model itself."""
    from audit.backends.hf.loading import load_model

    gpt2.model.save_pretrained(tmp_path)
    gpt2.tokenizer.save_pretrained(tmp_path)
    mapped = load_model(str(tmp_path), device="cpu", dtype="float32", device_map="auto")
    assert mapped.device == torch.device("cpu")
    reqs = _requests(3)
    expected = Scorer(gpt2, batch_size=4).loglikelihood(reqs)
    assert _max_diff(Scorer(mapped, batch_size=4).loglikelihood(reqs), expected) <= 1e-5


def test_stats_count_work(gpt2):
    reqs = _requests(4)[:-3] + [Request("", "The nurse said", " hi")]
    scorer = Scorer(gpt2, batch_size=64)
    scorer.loglikelihood(reqs)
    s = scorer.stats.as_dict()
    # 2 conditions: one prefix pass + one batch each; the prefix-less request: one batch
    assert s["requests"] == len(reqs) and s["forward_passes"] == 5 and s["prefix_reuse"] == len(reqs) - 1
    scorer.stats.reset()
    assert set(scorer.stats.as_dict().values()) == {0}
