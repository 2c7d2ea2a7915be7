"""Data-parallel scoring (audit.backends.distributed): torchrun on CPU (gloo) gives the single-process results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from records import comparable
from audit import Request
from audit.backends.distributed import World

ROOT = Path(__file__).resolve().parents[1]

SMALL_CONFIG = """\
preset = "default"
max_items = 24
n_resamples = 100
min_items = 10
batch_size = 4
"""


@pytest.mark.parametrize("n", [0, 1, 5, 7, 64])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_contiguous_shares_cover_every_request_once_in_order(n, size):
    slices = [World(size=size, rank=r).share(n) for r in range(size)]
    covered = [i for s in slices for i in range(n)[s]]
    assert covered == list(range(n))
    assert max(len(range(n)[s]) for s in slices) - min(len(range(n)[s]) for s in slices) <= 1


def _requests(n_items: int = 30) -> list[Request]:
    from audit.datasets.winobias.generated import generate_items
    from audit import render_prompt

    items = generate_items()[:n_items]
    out = []
    for it in items:
        p = render_prompt("zero_shot", it, [], "")
        out += [Request(p.prefix, p.query, " " + c) for c in it.candidates]
    return out + [Request("", "the nurse said", " that")]  # one request without a shared prefix


def test_batch_shards_merge_to_the_single_process_scores_bit_for_bit(tiny_model_dir):
    """Rank r runs every N-th batch of the single-process batching; merged, nothing moves by a bit."""
    from audit.backends.hf.loading import load_model
    from audit.backends.hf.scorer import Scorer

    scorer = Scorer(load_model(str(tiny_model_dir), device="cpu"), batch_size=4, progress=False)
    requests = _requests()
    whole = scorer.loglikelihood(requests)
    for size in (2, 3):
        parts = [scorer.loglikelihood(requests, shard=(rank, size)) for rank in range(size)]
        for i, expected in enumerate(whole):
            answered = [p[i] for p in parts if p[i] is not None]
            assert answered == [expected], (size, i)
        assert all(any(p[i] is None for p in parts) for i in range(len(requests)))  # work was split

    prompts = [r.context for r in requests[:12:2]]
    texts = scorer.generate(prompts, max_new_tokens=3)
    parts = [scorer.generate(prompts, max_new_tokens=3, shard=(rank, 2)) for rank in range(2)]
    assert [a if a is not None else b for a, b in zip(*parts)] == texts
    assert sum(a is not None for a in parts[0]) and sum(b is not None for b in parts[1])


def _run(args: list[str], project: Path, cache: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BIAS_AUDIT_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    env.pop("WORLD_SIZE", None), env.pop("RANK", None), env.pop("LOCAL_RANK", None)
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=600)


def test_torchrun_two_processes_write_the_single_process_results(tiny_model_dir, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "bias-audit.toml").write_text(SMALL_CONFIG, encoding="utf-8")
    run = [sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir)]

    single_log = tmp_path / "score-single.log"
    single = _run([*run, "--out", str(tmp_path / "single")], project, tmp_path / "cache-single",
                  {"BIAS_AUDIT_SCORE_LOG": str(single_log)})
    assert single.returncode in (0, 1), single.stderr[-3000:]  # the random tiny model may fail gates

    log = tmp_path / "score.log"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    dp = _run([*torchrun, *run[1:], "--out", str(tmp_path / "dp")], project, tmp_path / "cache-dp",
              {"BIAS_AUDIT_SCORE_LOG": str(log)})
    assert (tmp_path / "dp" / "results.json").is_file(), dp.stdout[-3000:] + dp.stderr[-3000:]

    assert comparable(tmp_path / "dp" / "results.json") == comparable(tmp_path / "single" / "results.json")
    verdict = json.loads((tmp_path / "dp" / "results.json").read_text())["verdict"]
    assert (dp.returncode == 0) == (verdict == "pass")  # torchrun passes on rank 0's exit status (1 for any failure)

    # Only rank 0 spoke: one pytest summary, one "results:" line.
    assert dp.stdout.count("results: ") == 1, dp.stdout[-3000:]
    # Only rank 0 touched the result cache: the misses were scored and logged once, not once per rank.
    def logged(path: Path) -> int:
        return sum(int(line.split("\t")[1]) for line in path.read_text().splitlines())

    assert logged(log) == logged(single_log) > 0
    assert (tmp_path / "cache-dp" / "results.sqlite").is_file()


def test_device_map_with_torchrun_is_refused_in_one_line(tiny_model_dir, monkeypatch):
    from audit import AuditError, AuditSession, BackendOptions, load_config

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    session = AuditSession(config=load_config(None), model_specs=[str(tiny_model_dir)],
                           backend_options=BackendOptions(device_map="auto"), use_cache=False)
    with pytest.raises(AuditError, match="--device-map cannot be combined with torchrun"):
        session.backend(str(tiny_model_dir))


def test_bad_torchrun_environment_is_one_line(monkeypatch):
    from audit.backends.distributed import world_from_env
    from audit import AuditError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(AuditError, match="RANK='two' is not a whole number"):
        world_from_env()
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(AuditError, match="not a valid torchrun rank"):
        world_from_env()
