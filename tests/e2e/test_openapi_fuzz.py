"""schemathesis finds no answer that breaks the OpenAPI document: every
status documented, every body and header as described, bounds declared,
bad input refused and good input taken, signed in as an API client (Bearer)
and as the web client (session cookie, with its same-origin rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.api_fuzz import fuzz

# A fixed seed: the suite explores the same cases every run; `make fuzz` goes wide.
SEED = 20261207


@pytest.mark.timeout(240)
async def test_api_keeps_to_its_document_signed_in_with_a_bearer_token(tmp_path: Path) -> None:
    run = await fuzz(tmp_path, auth="bearer", max_examples=5, seed=SEED)
    assert run.cases > 1000, run.output[-5000:]
    assert run.failures == 0 and run.returncode == 0, run.summary


@pytest.mark.timeout(240)
async def test_api_keeps_to_its_document_signed_in_with_the_session_cookie(
    tmp_path: Path,
) -> None:
    # The coverage phase (fixed boundary cases, the slow part) runs above; the
    # cookie run fuzzes and chains calls (stateful) as the web client would.
    run = await fuzz(tmp_path, auth="cookie", max_examples=5, phases="fuzzing,stateful", seed=SEED)
    assert run.cases > 300, run.output[-5000:]
    assert run.failures == 0 and run.returncode == 0, run.summary
