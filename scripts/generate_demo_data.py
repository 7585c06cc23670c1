#!/usr/bin/env python3
"""Generate the demo's data files (deterministic with a seed); `pactum demo` calls the same generator itself.

Example: .venv/bin/python scripts/generate_demo_data.py --out demo-out/data --seed 20250101
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connector.demo.datagen import DEFAULT_SEED, generate
from connector.demo.errors import DemoError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-out/data"), help="folder to write (git-ignored)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed; same seed, same bytes")
    parser.add_argument("--scale", type=float, default=1.0, help="row-count multiplier")
    args = parser.parse_args(argv)
    try:
        files = generate(args.out, seed=args.seed, scale=args.scale)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for f in files:
        print(f"{f.dataset:18} {f.size:>9} bytes  sha256:{f.sha256[:16]}  {f.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
