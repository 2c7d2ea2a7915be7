"""Issue 23, class 4: under torchrun, a server error on one rank ends every rank with the same one line,
within a bounded time (before: rank 0 waited in a barrier, rank 1 in all_gather_object, forever).
Real torchrun, two ranks, a real local server that refuses rank 1's scoring requests."""

import os
import subprocess
import sys
import time
from pathlib import Path

from fake_servers import VLLMShaped, serve

ROOT = Path(__file__).resolve().parents[1]


class FailsRankOne(VLLMShaped):
    """Each rank sends its RANK as its API key (api_key_env=RANK); rank 1's requests after its start-up probe fail."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.posts_by_rank1 = 0

    def __call__(self, method, path, body, headers):
        if method == "POST" and headers.get("Authorization") == "Bearer 1":
            self.posts_by_rank1 += 1
            if self.posts_by_rank1 > 10:  # past the probe: every scoring request of rank 1
                return 400, {"error": {"message": "boom: this rank is refused"}}
        return super().__call__(method, path, body, headers)


def test_a_server_error_on_one_rank_ends_both_ranks_with_one_line(tiny_model_dir, tmp_path):
    from audit.backends.hf.loading import load_model

    tiny = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    (tmp_path / "bias-audit.toml").write_text('min_items = 10\nmax_items = 24\nn_resamples = 100\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BIAS_AUDIT_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    with serve(FailsRankOne(tiny.model, tiny.tokenizer)) as url:
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "audit.cli",
             "run", "--model", f"openai-completions:{url}", "--backend-option", f"tokenizer={tiny_model_dir}",
             "--backend-option", "api_key_env=RANK", "--backend-option", "batch_size=1", "--out", "out"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert time.monotonic() - start < 300
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("bias-audit: error:")]
    # rank 0's own requests all succeeded: it reports rank 1's error, as every rank does, in one line
    assert lines and len(set(lines)) == 1 and "boom: this rank is refused" in lines[0] and len(lines[0]) <= 500, \
        proc.stderr[-3000:]
    assert "(exitcode: 2) local_rank: 0" in proc.stderr  # rank 0 exits 2 (the traceback after it is torchrun's own)
    assert not (tmp_path / "out" / "results.json").exists() or '"verdict": "pass"' not in (tmp_path / "out" / "results.json").read_text()
