"""The parsed tree shipped as JSON: the same config and the same errors as the YAML, for that YAML only."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3purge import config, configfile, yamlfile
from s3purge.errors import ConfigError
from tests.unit.test_config_corpus import CORPUS, GOOD


def ship(path: Path) -> bool:
    """Write the tree beside the config as deploy does; False where it ships none."""
    text = configfile.read_text(path)
    encoded = configfile.tree_json(yamlfile.parse(text, path.name), text)
    if encoded is not None:
        path.with_name(path.name + configfile.TREE_SUFFIX).write_bytes(encoded)
    return encoded is not None


def settings(loaded: config.Config) -> object:
    """What a config decides (providers compare by identity: their options stand for them)."""
    cdns = {n: (c.provider.options, c.limits, c.max_attempts, c.escalation) for n, c in loaded.cdns.items()}
    return cdns, loaded.buckets, loaded.probes


def outcome(path: Path) -> config.Config | str:
    try:
        return config.load(path)
    except ConfigError as error:
        return str(error)


def yaml_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading must not parse YAML: the shipped tree is used."""

    def refuse(text: str, name: str) -> configfile.Tree:
        raise AssertionError("parsed the YAML although its tree was shipped")

    monkeypatch.setattr(yamlfile, "parse", refuse)


def test_a_shipped_tree_loads_the_same_config_without_parsing_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yml"
    path.write_text(GOOD)
    parsed = config.load(path)
    assert ship(path)
    yaml_only(monkeypatch)
    assert settings(config.load(path)) == settings(parsed)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_bad_config_fails_with_the_same_message_from_its_tree(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yml"
    path.write_bytes(CORPUS[name][0])
    expected = outcome(path)
    try:
        shipped = ship(path)
    except ConfigError:  # not YAML, or too large: nothing to ship, the function reads the file as before
        shipped = False
    if shipped:
        yaml_only(monkeypatch)
    assert outcome(path) == expected


def test_problems_keep_their_lines_from_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yml"
    path.write_text(GOOD.replace("vendor: http", "vendor: http\n    concurrency: 0\n    vendor: http"))
    expected = outcome(path)
    assert ship(path)
    yaml_only(monkeypatch)
    assert outcome(path) == expected
    assert "c.yml:4: cdns.edge.concurrency" in expected and "duplicate key (again on line 5)" in expected


def test_a_tree_serves_only_the_text_it_was_parsed_from(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(GOOD)
    assert ship(path)
    path.write_text(GOOD.replace("www.example.com", "other.example.com"))  # edited after deploy
    assert config.load(path).routes("site")[0].hosts == ["other.example.com"]
    path.with_name(path.name + configfile.TREE_SUFFIX).write_bytes(b"{not json")
    assert config.load(path).routes("site")[0].hosts == ["other.example.com"]


@pytest.mark.parametrize(
    "document",
    [
        "a: 2026-12-01\n",  # a date: JSON would give a string
        "1: one\n",  # a number key
        "a: !!binary aGk=\n",
        "a: !!set {x}\n",
        "a: .nan\n",
    ],
)
def test_data_json_cannot_give_back_ships_no_tree(document: str) -> None:
    assert configfile.tree_json(yamlfile.parse(document, "c.yml"), document) is None


def test_json_gives_back_every_plain_type() -> None:
    document = f"a: [1, 1.5, true, null, text, '1', {{b: -0.0}}, {2**70}]\nc: &x {{d: 1}}\ne: *x\n"
    tree = yamlfile.parse(document, "c.yml")
    encoded = configfile.tree_json(tree, document)
    assert encoded is not None
    assert configfile.from_json(encoded, document) == tree
    assert configfile.from_json(encoded, document + "\n") is None
