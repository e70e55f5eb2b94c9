"""How the benchmarks start ``gortc serve``: on a free port, in a given data
directory, with no GORTC_* setting inherited from the caller's shell."""

from __future__ import annotations

import os
import sys


def serve_command(data_dir: str) -> list[str]:
    return [sys.executable, "-m", "gortc", "serve", "--port", "0", "--data-dir", data_dir]


def clean_environment(**settings: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GORTC_")}
    environment.update(settings)
    return environment
