"""Model URIs and names: the forms users type, and everything else refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.errors import InvalidInputError, InvalidNameError, InvalidURIError
from modelport.uri import (
    DatasetURI,
    ModelURI,
    is_dataset_uri,
    parse_dataset_uri,
    parse_uri,
    validate_name,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("models:/iris/3", ModelURI("iris", version=3)),
    ("models:/iris@champion", ModelURI("iris", alias="champion")),
    ("iris/3", ModelURI("iris", version=3)),
    ("iris@champion", ModelURI("iris", alias="champion")),
    ("iris", ModelURI("iris")),
    ("iris/latest", ModelURI("iris")),
    ("my.model_v-2/10", ModelURI("my.model_v-2", version=10)),
])
def test_accepted_forms(text: str, expected: ModelURI) -> None:
    assert parse_uri(text) == expected


@pytest.mark.parametrize("text", [
    "", "models:/", "iris/0", "iris/-1", "iris/3.0", "iris/abc", "iris@", "@champion",
    "iris@a/b", "a/b/c", "../etc/passwd", "iris/٣", "models:/iris/3/4", "iris@3", "iris@latest",
    "%2e%2e/1", "iris\x00/1", "iris/9999999999",
])
def test_refused_forms(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_uri(text)


def test_str_round_trip() -> None:
    for text in ["models:/iris/3", "models:/iris@champion"]:
        assert str(parse_uri(text)) == text
    assert parse_uri("iris@champion").short == "iris@champion"


NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True)


@given(NAME, st.integers(1, 10**6))
def test_any_valid_name_and_version_round_trips(name: str, version: int) -> None:
    uri = parse_uri(f"models:/{name}/{version}")
    assert (uri.name, uri.version) == (name, version)
    assert parse_uri(str(uri)) == uri


@given(st.text(max_size=200))
def test_parse_never_fails_with_anything_but_a_modelport_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except (InvalidURIError, InvalidNameError):
        return
    assert validate_name(uri.name) == uri.name
    assert "/" not in uri.name
    assert "\x00" not in uri.name
    assert not uri.name.startswith(".")


@pytest.mark.parametrize(("text", "expected"), [
    ("datasets:/churn/2", DatasetURI("churn", 2)),
    ("datasets:/churn", DatasetURI("churn")),
    ("datasets:/churn/latest", DatasetURI("churn")),
    ("churn-training/10", DatasetURI("churn-training", 10)),
])
def test_dataset_uris(text: str, expected: DatasetURI) -> None:
    assert parse_dataset_uri(text) == expected
    assert is_dataset_uri(str(expected)) and parse_dataset_uri(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "datasets:/", "datasets:/d@champion", "d/0", "a/b/c",
                                  "datasets:/../x/1", "d/x"])
def test_bad_dataset_uris(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_dataset_uri(text)
