# amaranth: UnusedElaboratable=no
"""The formal proofs of the Huffman decoder's lane (``formal/huffman_decoder.py``) with
yowasp-sby and the z3 solver: every task must pass (about half a minute for all)."""

import pytest

from formal.__main__ import run_task, tools_missing
from formal.huffman_decoder import CHECKS, TASKS, DecoderHarness

missing = tools_missing()


@pytest.mark.skipif(missing is not None, reason=f"formal tools missing: {missing}")
@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_proof(task, tmp_path):
    result = run_task(task, tmp_path)
    assert result.passed, f"{task.name}: {result.status}; see {result.directory / 'sby.log'}"


def test_every_check_has_a_task():
    assert {task.check for task in TASKS} == set(CHECKS)
    # Unbounded proofs for all but the cover traces.
    assert {task.mode for task in TASKS if task.check != "cover"} == {"prove"}


def test_harness_rejects_unknown_checks():
    with pytest.raises(ValueError, match="check must be one of"):
        DecoderHarness("liveness")
