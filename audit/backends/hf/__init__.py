"""The Hugging Face backend: ``loading`` (from_pretrained), ``tokenization`` (lm-eval's rules),
``planning`` (shared prefix, packed rows, tree mask), ``kv_cache`` (the expanded prefix cache),
``scorer`` (the engine) and ``backend`` (the ``Backend`` over them)."""
