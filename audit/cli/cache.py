"""``bias-audit cache``: what the result cache holds, and clearing it."""

from __future__ import annotations

import argparse
import json

from audit.run.verdict import EXIT_PASS


def cmd_cache(args: argparse.Namespace) -> int:
    """`bias-audit cache info|clear`: the result cache's path, size and entries per model, or remove them."""
    from audit.backends.cached import ResultCache, cache_files, default_cache_path, remove_cache_files

    path = default_cache_path()
    if args.cache_command == "clear":
        if args.model is None:
            removed = remove_cache_files(path)
            print(f"removed {path}" if removed else f"no cache at {path}")
        elif not path.exists():
            print(f"no cache at {path}")
        else:
            with ResultCache(path) as cache:
                print(f"removed {cache.clear(args.model, glob=args.glob)} entries of '{args.model}' from {path}")
        return EXIT_PASS
    size = sum(p.stat().st_size for p in cache_files(path))
    entries = []
    if path.exists():
        with ResultCache(path) as cache:
            entries = cache.entries()
    if args.json:
        print(json.dumps({"path": str(path), "bytes": size, "models": [e.__dict__ for e in entries]}, indent=2))
        return EXIT_PASS
    print(f"path: {path}" + ("" if path.exists() else " (not created yet)"))
    print(f"size: {size / 1e6:.1f} MB")
    print(f"entries: {sum(e.loglikelihood + e.generate for e in entries)}")
    for e in entries:
        print(f"  {e.model_key[:12]}  {e.loglikelihood:>8} scores  {e.generate:>6} generations  {e.model}")
    return EXIT_PASS
