"""Reference models: tiny causal LMs with a planted, known gender bias, the audit's ground truth.

Real models cannot be fetched offline, and their bias is unknown anyway. These are built here, in
about a minute on a CPU, so that the audit's own tests can check that it measures what was planted:

* ``reference-fair`` is trained to answer the gold referent in every prompt format (O-SB near 0: it is not
  made gender-blind, so its few errors may lean; theta 0.035 [0.008, 0.066] in the bare cloze of the embedded
  default on one machine, within every gate).
* ``reference-biased`` follows the labour statistics (``Occupation.male_association``, Zhao et al.
  2018): for a male pronoun it prefers the candidate more associated with men when the association
  gap to the gold referent exceeds a threshold, for a female pronoun the one more associated with
  women; otherwise, and for they/them, the gold referent. O-SB(o) (Mackraz et al. 2024) then grows
  with |association(o)| (Pearson about 0.97 over the 40 occupations at the rule level).
* ``reference-nontransfer`` is biased like ``reference-biased`` in the bare intrinsic cloze, but under
  every instruction format (zero-/few-shot, pre-prompts, chain of thought, chat) it follows another
  association, uncorrelated with the first (see ``_instructed_association``): the audit must measure
  low intrinsic -> extrinsic bias transfer for it (Mackraz et al. 2024; Sivakumar, Mackraz et al. 2025).

How they are made. A base network, a ``LlamaForCausalLM`` (2 layers, RoPE), is trained on text
rendered with the probes' own templates (``audit.prompts.render.render_prompt``: every format, pre-prompt,
few-shot k in 0..16 with shots from the other split, chat wrapping; the items of ``generate_items`` for
several seeds, with they/them twins) to answer the gold referent, " <occupation>." then EOS (chain of
thought: ' The pronoun is "he". So the answer is the <occupation>.'), and to expose,
through a trained linear readout of its final hidden state, the gender of the pronoun the prompt asks
about, separately for the bare cloze and for instructions. That network is ``reference-fair``.
A copy trained briefly to a milder gold preference (probability 0.8) carries the planted bias: each
occupation's output row gains ``margin / threshold * A_fmt(o)`` times the readout for format fmt,
where margin is the copy's measured gold-vs-distractor log-odds, so its logit moves by
``margin / threshold * g * A_fmt(o)`` and the distractor overtakes the gold referent when
``g * (A(distractor) - A(referent)) > threshold`` (``planted_choice``). Training each rule directly
(the obvious design) did not converge within the time budget on two CPU cores for the
format-dependent rule of the nontransfer model; writing the bias into a trained network plants it
exactly, and the mild margin keeps the shifted logits of the other occupations below the candidates.

The tokenizer is word-level (unknown words -> ``[UNK]``) over the templates' vocabulary, with a chat
template, and one token per *pronoun frame*, the end of a probe's query from the quoted pronoun on
(``"he" refers to the``, ``"she" refer to?\nAnswer: The``, see ``pronoun_frames``), so the answer position
itself carries the pronoun's gender and the format.

Models are saved with ``save_pretrained`` (safetensors) and loaded back by the HF backend (``audit.backends.hf``)
through ``from_pretrained(directory)``, exactly like real models. Builds are deterministic (seeded,
single-threaded), cached under ``$BIAS_AUDIT_CACHE_DIR/reference/<name>-<hash>`` (default
``~/.cache/bias-transfer-audit``) where the hash covers this module, the prompt templates, the item
generator, the pre-prompts and the occupation table (a template change rebuilds), made in a temporary
directory, renamed into place, and guarded by a file lock.

``python -m audit.datasets.winobias.reference_model.builder build [--all | NAME ...]`` builds (or finds) them and prints their directories.
"""

from __future__ import annotations

from audit.backends.base import BackendOptions
from audit.datasets.winobias.reference_model.planted import REFERENCE_MODELS, ReferenceSpec, planted_association, planted_choice

SCHEME = "reference"


def reference_model_dir(name: str):
    from audit.datasets.winobias.reference_model.builder import reference_model_dir as build_dir

    return build_dir(name)


def build_reference_models(force: bool = False, log=None):
    from audit.datasets.winobias.reference_model.builder import build_reference_models as build

    return build(force=force, log=log)


def check_reference(spec: str, options: BackendOptions) -> None:
    from audit.errors import ModelLoadError

    if spec not in REFERENCE_MODELS:
        raise ModelLoadError(f"model 'reference:{spec}': no such reference model (known: {', '.join(sorted(REFERENCE_MODELS))})")


def load_reference(spec: str, options: BackendOptions):
    """A reference model, built on first use, loaded by the HF backend from its directory."""
    from audit.backends.hf.backend import load_hf

    check_reference(spec, options)
    backend = load_hf(str(reference_model_dir(spec)), options, name=spec, source="reference")
    if backend.loaded.device.type == "cpu":
        from audit.datasets.winobias.reference_model.threads import OneThreadScorer

        backend.scorer = OneThreadScorer(backend.loaded, batch_size=options.batch_size)
    return backend


__all__ = ["REFERENCE_MODELS", "ReferenceSpec", "build_reference_models", "load_reference", "planted_association",
           "planted_choice", "reference_model_dir"]
