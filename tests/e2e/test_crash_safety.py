"""SIGKILL at random moments under sends and uploads: nothing acknowledged
is lost, no seq gap, no blob without its file nor file without its blob.

Three cycles of bench/crash_cycles.py (``make crash`` runs 25). The seed is
random and printed; ``GORTC_CRASH_SEED=N`` replays one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from bench.crash_cycles import Plan, Violation, run_cycles

pytestmark = pytest.mark.slow


async def test_acknowledged_data_survives_sigkill(tmp_path: Path) -> None:
    seed = int(os.environ.get("GORTC_CRASH_SEED") or random.randrange(1_000_000))
    print(f"crash cycles: seed {seed} (replay with GORTC_CRASH_SEED={seed})")
    plan = Plan(cycles=3, users=3, groups=2, seed=seed, min_uptime=0.4, max_uptime=2.0)
    try:
        figures = await run_cycles(plan, tmp_path / "data")
    except Violation as violation:
        pytest.fail(f"seed {seed}: {violation}")
    print(figures.summary())
    assert figures.cycles == 3
    # Every cycle had acknowledged work for the kill to interrupt.
    assert figures.messages_verified == figures.messages_acked > 0
    assert figures.uploads_verified >= figures.uploads_acked > 0
