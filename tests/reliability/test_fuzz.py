"""CI-sized spec fuzzing (issue 12, must-show 1): a few hundred fixed-seed mutants of the
shipped specs through `modelspec check`'s semantics, drawn by the same generator as the
long run (`bench/reliability.py fuzz`). Goal: every case is valid or a positioned error;
no traceback, hang, crash, unpositioned error or executed code. The fuzzer's own
detectors are tested too, so a broken detector cannot pass the suite silently."""

from __future__ import annotations

import collections
import os
import time

import pytest

from modelspec.errors import Diagnostic
from tests.conftest import ROOT
from tests.reliability import fuzz_runner
from tests.reliability.fuzz_runner import FAILURES, run_cases
from tests.reliability.mutation_ops import DATA_OPERATORS
from tests.reliability.mutations import Mutant, generate, shipped_specs

SEED = 12
CASES = 240


def describe(results) -> str:
    return "\n".join(
        f"case {r.case} ({r.source}, {'+'.join(r.operators)}): {r.outcome}: {r.detail[-800:]}"
        for r in results
    )


def test_fixed_seed_mutants_are_valid_or_positioned_errors(tmp_path):
    # 15 s here (5 s in the long run): beside the other test worker's XLA threads on a
    # 2-core CI machine, a 2-CPU-second case was starved of CPU for over 5 s.
    results = list(run_cases(generate(SEED, CASES, ROOT), tmp_path, workers=2, timeout=15.0))
    assert sorted(r.case for r in results) == list(range(CASES))
    failures = [r for r in results if r.outcome in FAILURES]
    assert not failures, describe(failures)
    counts = collections.Counter(r.outcome for r in results)
    assert counts["positioned"] > CASES // 2  # the mutations do break the specs
    assert counts["valid"] > 0  # ... and some survive to shape inference and the summary


def test_the_ci_cases_cover_every_operator_and_every_shipped_spec():
    cases = list(generate(SEED, CASES, ROOT))
    seen = {op for m in cases for op in m.operators}
    assert set(DATA_OPERATORS) <= seen
    assert {"truncate", "random_bytes", "document", "json", "flow", "block"} <= seen
    assert {m.source for m in cases} == {str(p.relative_to(ROOT)) for p in shipped_specs(ROOT)}
    assert any(
        b"python/object" in f for m in cases for f in m.files.values() if isinstance(f, bytes)
    )


def test_cases_are_a_pure_function_of_seed_and_number():
    first = list(generate(SEED, 30, ROOT))
    assert list(generate(SEED, 30, ROOT)) == first
    assert list(generate(SEED, 10, ROOT, start=20)) == first[20:]
    assert list(generate(SEED + 1, 30, ROOT)) != first


# -- the detectors: each must be able to fail -------------------------------------------------

CASE = Mutant(0, "hand-made", ("test",), {"spec.yaml": b"modelspec: 1\nname: t\n"})


def _one(tmp_path, case=CASE, timeout=5.0):
    [result] = run_cases([case], tmp_path, workers=1, timeout=timeout)
    return result


def _sleep(m, folder):
    time.sleep(60)


def _spin(m, folder):
    while True:
        pass


def _die(m, folder):
    os._exit(9)


def _raise(m, folder):
    raise KeyError("boom")


def _write_canary(m, folder):
    (folder / "CANARY").write_text("executed")
    return "valid", ""


@pytest.mark.parametrize(
    ("classify", "outcome"),
    [(_sleep, "hang"), (_spin, "hang"), (_die, "crash"), (_raise, "traceback"),
     (_write_canary, "executed")],
)  # fmt: skip
def test_the_runner_counts_hangs_crashes_tracebacks_and_executed_code(
    tmp_path, monkeypatch, classify, outcome
):
    monkeypatch.setattr(fuzz_runner, "classify", classify)  # the workers are forked after it
    started = time.perf_counter()
    result = _one(tmp_path, timeout=0.5)
    assert result.outcome == outcome, result
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "case0").exists()  # cleaned up, even after a kill


def test_a_tag_that_would_run_code_is_refused_and_its_canary_absent(tmp_path):
    text = b'modelspec: 1\nname: !!python/object/apply:os.system ["touch @CANARY@"]\n'
    result = _one(tmp_path, Mutant(0, "hand-made", ("tag",), {"spec.yaml": text}))
    assert result.outcome == "positioned", result
    assert "2:7: name: YAML tag '!!python/object/apply:os.system'" in result.detail


@pytest.mark.parametrize(
    ("diag", "expected"),
    [
        (Diagnostic("{folder}/spec.yaml", 3, 7, "model.layers[0].units", "bad"), True),
        (Diagnostic("{folder}/spec.yaml", 0, 0, "<file>", "too large"), False),
        (Diagnostic("/etc/passwd", 1, 1, "extends", "bad"), False),
        (Diagnostic("{folder}/spec.yaml", 2, 1, "", "no path"), False),
        (Diagnostic("--set 'seed=x'", 0, 0, "seed", "not an int"), True),
        (Diagnostic("--set 'other=x'", 0, 0, "seed", "not an int"), False),
    ],
)
def test_positioned_means_file_line_col_path_in_the_case(tmp_path, diag, expected):
    diag = Diagnostic(
        diag.file.format(folder=tmp_path), diag.line, diag.col, diag.path, diag.message
    )
    assert fuzz_runner._positioned(diag, tmp_path, ("seed=x",)) is expected
