"""Property tests: a mutated spec is either valid or rejected with positioned
diagnostics — never any other exception (no tracebacks for user errors)."""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelspec import SpecError, load
from tests.conftest import ROOT

BASES = {
    p.name: yaml.safe_load(p.read_text())
    for p in sorted(ROOT.glob("specs/*.yaml"))
    if "extends" not in p.read_text()
}
TEXTS = {p.name: p.read_text() for p in sorted(ROOT.glob("specs/*.yaml"))}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["Dense", "relu", "same", "x", "${filters}", "seq", "-1"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def container(data, path):
    node = data
    for p in path[:-1]:
        node = node[p]
    return node


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(BASES)))
    data = copy.deepcopy(BASES[name])
    for _ in range(draw(st.integers(1, 3))):
        all_paths = [p for p in paths(data) if p]
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        parent = container(data, path)
        action = draw(st.sampled_from(["replace", "delete", "add_key", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        elif action == "rename" and isinstance(parent, dict):
            parent[str(path[-1]) + draw(st.sampled_from(["s", "_", "x"]))] = parent.pop(path[-1])
    return data


def assert_valid_or_positioned(source) -> None:
    try:
        load(source)
    except SpecError as err:
        assert err.diagnostics, "a SpecError must carry diagnostics"
        for d in err.diagnostics:
            assert d.file and d.path and d.message, d
            assert d.line >= 0 and d.col >= 0, d
            assert d.format().startswith(d.file)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_specs_are_valid_or_positioned(data):
    assert_valid_or_positioned(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(TEXTS)),
    st.integers(0, 10_000),
    st.sampled_from(
        [
            ":",
            "{",
            "}",
            "[",
            "-",
            " ",
            "\t",
            "\n",
            "!!python/name:os.system ",
            "&a ",
            "*a",
            "'",
            "#",
        ]
    ),
)
def test_corrupted_yaml_text_is_valid_or_positioned(tmp_path_factory, name, pos, junk):
    text = TEXTS[name]
    pos %= len(text)
    path = tmp_path_factory.mktemp("spec") / "s.yaml"
    path.write_text(text[:pos] + junk + text[pos:])
    assert_valid_or_positioned(path)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=25), min_size=1, max_size=3))
def test_random_overrides_are_valid_or_positioned(overrides):
    try:
        load(copy.deepcopy(BASES["text_classifier.yaml"]), overrides)
    except SpecError as err:
        assert all(d.message for d in err.diagnostics)
