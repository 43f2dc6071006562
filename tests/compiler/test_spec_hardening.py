"""Regression tests for the spec loader's security and integrity defects (a probe's
findings): `extends` confinement, alias bombs, unbounded block expansion, absurd sizes,
loader tracebacks, terminal escapes, non-finite numbers and block-chain messages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from modelspec import SpecError, load
from modelspec.cli import app
from modelspec.compiler import block_limits, extends, memory, yaml_positions

HEAD = """\
modelspec: 1
name: t
"""
MODEL = """\
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {type: Dense, units: 2}
"""


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def check(tmp_path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["check", *args])
    return result, time.perf_counter() - started


def messages(exc: pytest.ExceptionInfo) -> list[str]:
    return [d.format() for d in exc.value.diagnostics]


def block_errors(tmp_path, block: str, use: str) -> tuple[str, list[str]]:
    """The diagnostics of a spec with one block `b` and one use of it."""
    path = write(
        tmp_path,
        "b.yaml",
        HEAD + f"blocks:\n  b: {{layers: [{block}]}}\n"
        f"model:\n  inputs: {{x: {{shape: [4]}}}}\n  layers:\n    - {use}\n",
    )
    with pytest.raises(SpecError) as exc:
        load(path)
    return str(path), messages(exc)


# -- 1. extends ----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/zero", "/proc/self/environ"])
def test_extends_outside_the_tree_is_refused_fast_without_content(tmp_path, monkeypatch, target):
    write(tmp_path, "spec.yaml", f"extends: {target}\n{HEAD}")
    result, seconds = check(tmp_path, monkeypatch, "spec.yaml")
    assert result.exit_code == 2
    assert seconds < 1
    assert "spec.yaml:1:10: extends: `extends` may only name files inside" in result.stderr
    assert "--allow-outside" in result.stderr
    assert "root:" not in result.output and "Traceback" not in result.output


def test_extends_relative_path_out_of_the_tree_is_refused(tmp_path, monkeypatch):
    write(tmp_path, "secret.yaml", "name: t\naws_secret_access_key: wJalrXUtnFEMI\n")
    write(tmp_path, "project/spec.yaml", f"extends: ../secret.yaml\n{HEAD}{MODEL}")
    result, seconds = check(tmp_path / "project", monkeypatch, "spec.yaml")
    assert result.exit_code == 2 and seconds < 1
    assert "may only name files inside" in result.stderr
    assert "wJalr" not in result.output


def test_extends_through_a_symlink_out_of_the_tree_is_refused(tmp_path):
    write(tmp_path, "outside/base.yaml", HEAD + MODEL)
    (tmp_path / "project").mkdir()
    os.symlink(tmp_path / "outside" / "base.yaml", tmp_path / "project" / "link.yaml")
    spec = write(tmp_path, "project/spec.yaml", "extends: link.yaml\nname: u\n")
    with pytest.raises(SpecError, match="may only name files inside"):
        load(spec)


def test_extends_may_reach_up_to_the_repository_root(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path, "bases/base.yaml", HEAD + MODEL)
    spec = write(tmp_path, "specs/deep/spec.yaml", "extends: ../../bases/base.yaml\nname: u\n")
    assert load(spec).name == "u"


def test_extends_fifo_is_refused_without_blocking(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "base.yaml")
    write(tmp_path, "spec.yaml", f"extends: base.yaml\n{HEAD}")
    result, seconds = check(tmp_path, monkeypatch, "spec.yaml")
    assert result.exit_code == 2 and seconds < 1
    assert "the base spec is not a regular file (it is a FIFO)" in result.stderr


def test_allow_outside_widens_the_tree_but_never_to_special_files(tmp_path, monkeypatch):
    write(tmp_path, "outside/base.yaml", HEAD + MODEL)
    write(tmp_path, "project/spec.yaml", "extends: ../outside/base.yaml\nname: u\n")
    result, _ = check(tmp_path / "project", monkeypatch, "--allow-outside", "spec.yaml")
    assert result.exit_code == 0, result.output
    write(tmp_path, "project/zero.yaml", "extends: /dev/zero\nname: u\n")
    result, seconds = check(tmp_path / "project", monkeypatch, "--allow-outside", "zero.yaml")
    assert result.exit_code == 2 and seconds < 1
    assert "not a regular file (it is a character device)" in result.stderr


def test_extended_file_that_is_not_a_spec_is_not_echoed(tmp_path, monkeypatch):
    write(tmp_path, "secrets/creds.yaml", "aws_secret_access_key: wJalrXUtnFEMI\n")
    write(tmp_path, "spec.yaml", f"extends: secrets/creds.yaml\n{HEAD}{MODEL}")
    result, _ = check(tmp_path, monkeypatch, "spec.yaml")
    assert result.exit_code == 2
    assert "secrets/creds.yaml is not a modelspec spec" in result.stderr
    assert "wJalr" not in result.output


def test_unknown_top_level_keys_name_the_key_never_the_value(tmp_path, monkeypatch):
    write(tmp_path, "base.yaml", "name: b\naws_secret_access_key: wJalrXUtnFEMI\n")
    write(tmp_path, "spec.yaml", f"extends: base.yaml\n{HEAD}{MODEL}")
    result, _ = check(tmp_path, monkeypatch, "spec.yaml")
    assert "base.yaml:2:1: aws_secret_access_key: unknown section" in result.stderr
    assert "wJalr" not in result.output


def test_extends_chain_depth_is_capped(tmp_path):
    n = 1000
    for i in range(n):
        write(tmp_path, f"s{i}.yaml", f"extends: s{i + 1}.yaml\n")
    write(tmp_path, f"s{n}.yaml", HEAD + MODEL)
    with pytest.raises(SpecError) as exc:
        load(tmp_path / "s0.yaml")
    [line] = messages(exc)
    assert f"`extends` chain is deeper than {extends.MAX_EXTENDS_DEPTH} files" in line


def test_extends_fan_out_is_capped(tmp_path):
    # each file extends the next one twice: 2^12 reads without a cap
    for i in range(12):
        write(tmp_path, f"f{i}.yaml", f"extends: [f{i + 1}.yaml, f{i + 1}.yaml]\n")
    write(tmp_path, "f12.yaml", HEAD + MODEL)
    with pytest.raises(SpecError, match="reads more than 64 files"):
        load(tmp_path / "f0.yaml")


def test_spec_files_have_a_size_cap(tmp_path):
    big = write(tmp_path, "big.yaml", HEAD + "# " + "x" * extends.MAX_SPEC_BYTES + "\n" + MODEL)
    with pytest.raises(SpecError, match="larger than 512 KiB"):
        load(big)
    spec = write(tmp_path, "spec.yaml", "extends: big.yaml\nname: u\n")
    with pytest.raises(SpecError, match=r"spec.yaml:1:10: extends: \S*big.yaml is larger"):
        load(spec)


# -- 2. alias bombs, 3. block expansion: refused fast with bounded memory --------------

BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


def nested_blocks(levels: int = 8, repeat: int = 10) -> str:
    text = HEAD + "blocks:\n  b0: {layers: [{type: Dense, units: 4}]}\n"
    for i in range(1, levels):
        text += f"  b{i}: {{layers: [{{type: b{i - 1}, repeat: {repeat}}}]}}\n"
    return text + (
        "model:\n  inputs: {x: {shape: [4]}}\n"
        f"  layers:\n    - {{type: b{levels - 1}, repeat: {repeat}}}\n"
    )


PROBE = """\
import resource, sys, time
from modelspec import SpecError, load
# CPU seconds of this process: the work the refusal costs, the same on a busy machine
# (wall time there measures the other jobs too)
t = time.process_time()
try:
    load(sys.argv[1])
    print("LOADED")
except SpecError as e:
    print(e)
print("SECONDS", time.process_time() - t)
# VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over exec
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak_kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("PEAK_MB", peak_kb / 1024)
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BOMB, "YAML aliases in this spec repeat more than 20,000 values"),
        (nested_blocks(), "expands to 100,000,000 layers; a model may have at most 10,000"),
    ],
    ids=["alias_bomb", "nested_blocks_1e8"],
)
def test_bombs_are_refused_in_under_a_second_and_200_mb(tmp_path, text, expected):
    path = write(tmp_path, "bomb.yaml", text)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=60
    ).stdout
    assert expected in out and "LOADED" not in out
    seconds = float(out.split("SECONDS ")[1].split()[0])
    peak = float(out.split("PEAK_MB ")[1].split()[0])
    assert seconds < 1, out
    assert peak < 200, out


def test_a_million_repeats_are_refused(tmp_path):
    path, lines = block_errors(tmp_path, "{type: Dense, units: 4}", "{type: b, repeat: 1000000}")
    assert lines == [
        f"{path}:8:14: model.layers[0].type: this use of block 'b' expands to 1,000,000 "
        f"layers; a model may have at most {block_limits.MAX_LAYERS:,}. Lower `repeat` here "
        "or in the blocks it uses."
    ]


def test_an_error_inside_a_repeated_block_is_printed_once(tmp_path):
    path, lines = block_errors(tmp_path, "{type: Dense, units: -1}", "{type: b, repeat: 5000}")
    assert lines == [
        f"{path}:4:37: blocks.b.layers[0].units: must be > 0 (reported once for the 5000 "
        "copies of block 'b'). Received: units=-1. Valid values: units > 0."
    ]


# -- 4. absurd sizes -----------------------------------------------------------------


def test_check_refuses_a_model_above_the_device_limit(tmp_path, monkeypatch):
    write(
        tmp_path,
        "huge.yaml",
        HEAD + "model:\n  inputs: {x: {shape: [64]}}\n  layers:\n"
        "    - {type: Dense, units: 1000000000000}\n    - {type: Dense, units: 10}\n",
    )
    result, _ = check(tmp_path, monkeypatch, "huge.yaml")
    assert result.exit_code == 2
    line = result.stderr.splitlines()[0]
    assert line.startswith("huge.yaml:6:7: model.layers[0]: training needs at least ")
    assert "The largest layer is 'dense' with 65,000,000,000,000 parameters" in line
    result = CliRunner().invoke(app, ["summary", "huge.yaml"])
    assert result.exit_code == 2 and "training needs at least" in result.stderr


def test_estimate_counts_parameters_gradients_slots_and_activations(tmp_path):
    spec = load(
        write(
            tmp_path,
            "s.yaml",
            HEAD + MODEL + "optimizer: Adam\ndata: {train: {type: sklearn, name: iris}, "
            "batch_size: 8}\n",
        )
    )
    est = memory.estimate(spec)
    params = 4 * (4 * 2 + 2)
    assert (est.params, est.gradients, est.optimizer) == (params, params, 2 * params)
    assert est.activations == 4 * 2 * 8  # the Dense output for 8 examples
    assert est.largest_layer == "dense"


@pytest.mark.parametrize(
    "layers",
    [
        "    - {type: Dense, units: 40000000}\n    - {type: Dense, units: 1}\n",
        "    - {type: Embedding, input_dim: 10000000000, output_dim: 8}\n"
        "    - {type: GlobalAveragePooling1D}\n    - {type: Dense, units: 1}\n",
    ],
    ids=["dense_4e7", "embedding_1e10"],
)
def test_train_refuses_before_allocating(tmp_path, monkeypatch, layers):
    from modelspec.runtime import memory_guard
    from modelspec.runtime.session import open_session

    monkeypatch.setattr(memory_guard.os, "sysconf", _fake_sysconf(16 << 30))
    dtype = ", dtype: int32" if "Embedding" in layers else ""
    spec = write(
        tmp_path,
        "s.yaml",
        HEAD
        + f"model:\n  inputs: {{x: {{shape: [64]{dtype}}}}}\n  layers:\n"
        + layers
        + "loss: mse\n",
    )
    started = time.perf_counter()
    with pytest.raises(SpecError) as exc:
        open_session(spec, data=False)
    assert time.perf_counter() - started < 10
    [line] = messages(exc)
    assert "model.layers[0]: training needs at least" in line
    assert "more than this host's memory, shared by 8 devices (2.00 GB)" in line


def _fake_sysconf(total: int):
    real = os.sysconf

    def sysconf(name):
        if name == "SC_PHYS_PAGES":
            return total // real("SC_PAGE_SIZE")
        return real(name)

    return sysconf


# -- 8. loader tracebacks ------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85\x9b"[1]])
def test_control_characters_are_positioned_errors(tmp_path, char):
    path = tmp_path / "c.yaml"
    path.write_text(f"{HEAD}seed: 1{char}\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load(path)
    [line] = messages(exc)
    assert line.startswith(f"{path}:3:8: <document>: control character U+{ord(char):04X}")


def test_deep_nesting_is_a_positioned_error(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(HEAD + "model: " + "[" * 400 + "]" * 400 + "\n")
    with pytest.raises(SpecError) as exc:
        load(path)
    [line] = messages(exc)
    assert f"nests mappings and lists deeper than {yaml_positions.MAX_NESTING} levels" in line
    assert line.startswith(f"{path}:3:")


def test_deep_nesting_through_aliases_is_a_positioned_error(tmp_path):
    text = "a0: &a0 " + "[" * 60 + "]" * 60 + "\n"
    for i in range(1, 30):
        text += f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 + "\n"
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="deeper than 64 levels"):
        load(path)


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ('!!float "abc"', "3:7: seed: not a valid float. Received: 'abc'."),
        ('!!int "12x"', "3:7: seed: not a valid int. Received: '12x'."),
        ("9" * 5001, "3:7: seed: number is too long (5,001 digits)."),
    ],
)
def test_bad_typed_scalars_are_positioned_errors(tmp_path, scalar, expected):
    path = tmp_path / "s.yaml"
    path.write_text(f"{HEAD}seed: {scalar}\n")
    with pytest.raises(SpecError) as exc:
        load(path)
    assert expected in messages(exc)[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seed=!!float abc", "--set 'seed=!!float abc': seed: not a valid float."),
        ("seed=!!bool 64", "--set 'seed=!!bool 64': seed: not a valid bool."),
        ("seed=&a [*a]", "--set 'seed=&a [*a]': seed: recursive YAML alias."),
        ("seed=18446744073709551616", "seed: integer out of range"),
        ("seed=!!python/object:os.system x", "YAML tag '!!python/object:os.system'"),
    ],
)
def test_set_values_are_read_with_the_same_guards(tmp_path, override, expected):
    path = write(tmp_path, "s.yaml", HEAD + MODEL)
    with pytest.raises(SpecError) as exc:
        load(path, [override])
    assert expected in messages(exc)[0]


def test_set_alias_bomb_is_refused(tmp_path):
    path = write(tmp_path, "s.yaml", HEAD + MODEL)
    bomb = (
        "["
        + ", ".join(
            ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
            + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
        )
        + "]"
    )
    started = time.perf_counter()
    with pytest.raises(SpecError, match="YAML aliases in this spec repeat more than"):
        load(path, [f"train.callbacks={bomb}"])
    assert time.perf_counter() - started < 2


def test_merge_key_repeats_count_against_the_alias_cap(tmp_path):
    keys = ", ".join(f"k{i}: 1" for i in range(3000))
    text = f"a: &a {{{keys}}}\n" + "".join(f"m{i}: {{<<: *a}}\n" for i in range(10))
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="repeat more than 20,000 values"):
        load(path)


@pytest.mark.parametrize("char", ["\x85", "\u2028"])
def test_yaml_only_line_breaks_are_refused_where_an_editor_shows_them(tmp_path, char):
    path = tmp_path / "n.yaml"
    path.write_text(f"{HEAD}name: a{char}b\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load(path)
    assert messages(exc)[0].startswith(f"{path}:3:8: <document>: control character")


@pytest.mark.parametrize("digits", ["1" + "0" * 320, "0x" + "f" * 3000])
def test_huge_integers_are_positioned_errors(tmp_path, monkeypatch, digits):
    write(tmp_path, "s.yaml", HEAD + MODEL.replace("units: 2", f"units: {digits}"))
    result, _ = check(tmp_path, monkeypatch, "s.yaml")
    assert result.exit_code == 2
    assert "model.layers[0].units: integer out of range" in result.stderr
    assert "Traceback" not in result.output


def test_non_utf8_gives_line_and_column(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_bytes(b"modelspec: 1\nname: caf\xe9\n")
    with pytest.raises(SpecError) as exc:
        load(path)
    assert messages(exc)[0].startswith(f"{path}:2:10: <file>: not a UTF-8 text file (byte 22)")


# -- 13. terminal escapes --------------------------------------------------------------


def test_escape_sequences_in_keys_are_never_echoed_raw(tmp_path, monkeypatch):
    write(
        tmp_path,
        "k.yaml",
        HEAD + '"\\e[2J": 3\n' + MODEL.replace("units: 2", 'units: 2, "\\e[2J": 1'),
    )
    result, _ = check(tmp_path, monkeypatch, "k.yaml")
    assert result.exit_code == 2
    assert "\x1b" not in result.output
    assert "unknown section '\\x1b[2J'" in result.stderr
    assert "unknown argument '\\x1b[2J' for Dense" in result.stderr


# -- 14. non-finite numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("optimizer={type: SGD, learning_rate: .inf}", "optimizer.learning_rate"),
        ("optimizer={type: SGD, learning_rate: Infinity}", "optimizer.learning_rate"),
        ("model.layers[0]={type: Rescaling, scale: .nan}", "model.layers[0].scale"),
        ("model.layers[0]={type: Rescaling, scale: 1e309}", "model.layers[0].scale"),
        (
            "optimizer={type: Adam, learning_rate: {type: CosineDecay, initial_learning_rate: "
            "0.0, warmup_target: .inf, warmup_steps: 5, decay_steps: 10}}",
            "optimizer.learning_rate.warmup_target",
        ),
    ],
)
def test_non_finite_numbers_are_errors(tmp_path, override, path):
    spec = write(tmp_path, "s.yaml", HEAD + MODEL + "    - {type: Dense, units: 1}\n")
    with pytest.raises(SpecError) as exc:
        load(spec, [override])
    assert f"{path}: must be a finite number." in messages(exc)[0]


# -- 15. block chains and cycles -------------------------------------------------------


def test_a_long_block_chain_is_not_called_a_cycle(tmp_path):
    text = HEAD + "blocks:\n  c0: {layers: [{type: Dense, units: 4}]}\n"
    text += "".join(f"  c{i}: {{layers: [{{type: c{i - 1}}}]}}\n" for i in range(1, 40))
    text += "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n    - {type: c39}\n"
    spec = load(write(tmp_path, "c.yaml", text))
    assert len(spec.model.layers) == 1
    too_deep = HEAD + "blocks:\n  c0: {layers: [{type: Dense, units: 4}]}\n"
    too_deep += "".join(f"  c{i}: {{layers: [{{type: c{i - 1}}}]}}\n" for i in range(1, 70))
    too_deep += "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n    - {type: c69}\n"
    with pytest.raises(SpecError) as exc:
        load(write(tmp_path, "d.yaml", too_deep))
    [line] = messages(exc)
    assert f"blocks nest deeper than {block_limits.MAX_DEPTH} levels" in line
    assert "uses itself" not in line


def test_a_cycle_is_reported_alone(tmp_path):
    path = write(
        tmp_path,
        "cyc.yaml",
        HEAD + "blocks:\n  a: {layers: [{type: b}]}\n  b: {layers: [{type: a}]}\n"
        "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n    - {type: a}\n",
    )
    with pytest.raises(SpecError) as exc:
        load(path)
    assert messages(exc) == [
        f"{path}:5:23: blocks.b.layers[0].type: block 'a' uses itself: a -> b -> a."
    ]


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_allow_outside_reaches_the_commands_that_run_models(tmp_path, monkeypatch, command):
    write(tmp_path, "outside/base.yaml", HEAD + MODEL)
    write(tmp_path, "project/spec.yaml", "extends: ../outside/base.yaml\nname: u\n")
    monkeypatch.chdir(tmp_path / "project")
    refused = CliRunner().invoke(app, [command, "spec.yaml"])
    assert refused.exit_code == 2 and "may only name files inside" in refused.stderr
    allowed = CliRunner().invoke(app, [command, "--allow-outside", "spec.yaml"])
    assert allowed.exit_code == 2, allowed.output
    assert "may only name files inside" not in allowed.stderr
    assert "needs a `data:` section" in allowed.stderr or "no checkpoint" in allowed.stderr


def test_device_out_of_memory_is_one_clear_error(tmp_path, monkeypatch):
    from modelspec.runtime import trainer

    def exhausted(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 41600000000 bytes.\nmore")

    monkeypatch.setattr(trainer, "train", exhausted)
    write(tmp_path, "s.yaml", HEAD + MODEL)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "s.yaml"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "<devices>: memory: the devices ran out of memory (RESOURCE_EXHAUSTED: Out of memory "
        "allocating 41600000000 bytes.). Lower data.batch_size, shrink the largest layers, or "
        "shard parameters over more devices (distribution.mesh with an `fsdp` axis)."
    )


def test_extends_total_bytes_are_capped(tmp_path):
    filler = "# " + "x" * (extends.MAX_SPEC_BYTES - 100) + "\n"
    names = [f"b{i}.yaml" for i in range(3)]
    for name in names:
        write(tmp_path, name, HEAD + filler)
    spec = write(tmp_path, "s.yaml", f"extends: [{', '.join(names)}]\n" + MODEL)
    with pytest.raises(SpecError, match="reads more than 1024 KiB of specs in all"):
        load(spec)


def test_a_repeat_passed_through_a_block_parameter_is_capped(tmp_path):
    path = write(
        tmp_path,
        "p.yaml",
        HEAD + "blocks:\n  d: {layers: [{type: Dense, units: 4}]}\n"
        "  outer:\n    params: {n: 1}\n    layers:\n      - {type: d, repeat: '${n}'}\n"
        "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n    - {type: outer, n: 1000000}\n",
    )
    started = time.perf_counter()
    with pytest.raises(SpecError) as exc:
        load(path)
    assert time.perf_counter() - started < 1
    [line] = messages(exc)
    assert "blocks.outer.layers[0].repeat: this use of block 'd' expands to 1,000,000" in line
