"""Reference models with planted, known bias (to be built)."""

REFERENCE_MODELS: dict = {}


def reference_model_dir(name: str):
    raise NotImplementedError
