"""Action tokenizer benchmark (BEAST vs FAST vs binning); same as ``tactkit tokenizer bench``.

    .venv/bin/python benchmarks/tokenizer_bench.py [--quick] [--data STORE] [--out DIR]
"""

from __future__ import annotations

import sys

from tactkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["tokenizer", "bench", *sys.argv[1:]]))
