"""The SQL registry store on SQLite and PostgreSQL: versions, aliases, history, deletes."""

from __future__ import annotations

import pytest

from modelport.errors import (
    AliasNotFoundError,
    InvalidNameError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.registry.store import NewVersion, SqlRegistryStore
from modelport.uri import ModelURI

DIGEST = "sha256:" + "ab" * 32


def new(**kw: object) -> NewVersion:
    base: dict[str, object] = {"flavor": "sklearn", "artifact_digest": DIGEST,
                               "artifact_size": 10, "created_by": "alice"}
    base.update(kw)
    return NewVersion(**base)  # type: ignore[arg-type]


@pytest.fixture
def store(database_url: str):
    s = SqlRegistryStore.from_url(database_url)
    yield s
    s.close()


def test_versions_are_numbered_from_one_and_keep_their_fields(store: SqlRegistryStore) -> None:
    v1 = store.create_version("iris", new(metrics={"acc": 0.9}, params={"C": 1.0},
                                          tags={"team": "a"}, signature={"inputs": {}},
                                          training_data={"fingerprint": "x"}))
    v2 = store.create_version("iris", new())
    assert (v1.version, v2.version) == (1, 2)
    got = store.get_version("iris", 1)
    assert got.metrics == {"acc": 0.9}
    assert got.params == {"C": 1.0}
    assert got.tags == {"team": "a"}
    assert got.signature == {"inputs": {}}
    assert got.training_data == {"fingerprint": "x"}
    assert got.created_by == "alice"
    assert got.created_at.tzinfo is not None
    assert got.uri == "models:/iris/1"


def test_each_model_has_its_own_sequence(store: SqlRegistryStore) -> None:
    store.create_version("a", new())
    store.create_version("a", new())
    assert store.create_version("b", new()).version == 1


def test_list_models_and_versions(store: SqlRegistryStore) -> None:
    for _ in range(3):
        store.create_version("iris", new())
    store.create_version("wine", new())
    store.set_alias("iris", "champion", 2, "bob")
    models = {m.name: m for m in store.list_models()}
    assert models["iris"].latest_version == 3
    assert models["iris"].version_count == 3
    assert models["iris"].aliases == {"champion": 2}
    assert models["wine"].version_count == 1
    versions = store.list_versions("iris")
    assert [v.version for v in versions] == [3, 2, 1]
    assert versions[1].aliases == ("champion",)


def test_resolve_by_number_alias_and_latest(store: SqlRegistryStore) -> None:
    store.create_version("iris", new())
    store.create_version("iris", new())
    store.set_alias("iris", "champion", 1, "bob")
    assert store.resolve(ModelURI("iris", version=2)).version == 2
    assert store.resolve(ModelURI("iris", alias="champion")).version == 1
    assert store.resolve(ModelURI("iris")).version == 2
    with pytest.raises(AliasNotFoundError, match="no alias 'staging'"):
        store.resolve(ModelURI("iris", alias="staging"))
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        store.resolve(ModelURI("iris", version=9))
    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        store.resolve(ModelURI("nope"))


def test_alias_history_records_every_move(store: SqlRegistryStore) -> None:
    for _ in range(3):
        store.create_version("iris", new())
    store.set_alias("iris", "champion", 1, "alice", "first")
    store.set_alias("iris", "champion", 3, "bob", "better recall")
    store.set_alias("iris", "champion", 3, "bob", "no-op")  # same target: no new event
    store.set_alias("iris", "staging", 2, "carol")
    store.delete_alias("iris", "champion", "dave", "incident 42")
    hist = store.alias_history("iris", "champion")
    assert [(e.from_version, e.to_version, e.actor, e.reason) for e in hist] == [
        (None, 1, "alice", "first"),
        (1, 3, "bob", "better recall"),
        (3, None, "dave", "incident 42"),
    ]
    assert [e.alias for e in store.alias_history("iris")] == ["champion", "champion", "staging",
                                                              "champion"]
    assert hist[0].at <= hist[1].at <= hist[2].at


def test_alias_to_missing_or_deleted_version_is_refused(store: SqlRegistryStore) -> None:
    store.create_version("iris", new())
    store.create_version("iris", new())
    with pytest.raises(VersionNotFoundError):
        store.set_alias("iris", "champion", 5, "bob")
    store.delete_version("iris", 2, "bob")
    with pytest.raises(VersionNotFoundError, match="deleted"):
        store.set_alias("iris", "champion", 2, "bob")
    assert store.alias_history("iris") == []


def test_invalid_names_and_aliases(store: SqlRegistryStore) -> None:
    for bad in ["../etc", "a/b", "", "-x", "x" * 129, "bad name", "a\x00b", "%2e%2e"]:
        with pytest.raises(InvalidNameError):
            store.create_version(bad, new())
    store.create_version("iris", new())
    for bad_alias in ["3", "latest", "a/b", ".."]:
        with pytest.raises(InvalidNameError):
            store.set_alias("iris", bad_alias, 1, "bob")
    assert [m.name for m in store.list_models()] == ["iris"]


def test_sql_metacharacters_are_stored_verbatim(store: SqlRegistryStore) -> None:
    nasty = "'; DROP TABLE model_versions; --"
    store.create_version("iris", new(description=nasty, tags={nasty: nasty}, created_by=nasty))
    got = store.get_version("iris", 1)
    assert got.description == nasty
    assert got.tags == {nasty: nasty}
    store.set_alias("iris", "champion", 1, nasty, nasty)
    assert store.alias_history("iris")[0].reason == nasty


def test_deleting_a_version_removes_its_aliases_and_keeps_numbers(store: SqlRegistryStore) -> None:
    store.create_version("iris", new())
    store.create_version("iris", new())
    store.set_alias("iris", "champion", 2, "bob")
    store.delete_version("iris", 2, "carol", "bad data")
    with pytest.raises(VersionNotFoundError, match="deleted"):
        store.get_version("iris", 2)
    assert store.resolve(ModelURI("iris")).version == 1
    assert store.get_model("iris").aliases == {}
    last = store.alias_history("iris")[-1]
    assert (last.from_version, last.to_version, last.actor, last.reason) == (2, None, "carol",
                                                                              "bad data")
    # numbers are never reused
    assert store.create_version("iris", new()).version == 3
    assert [v.version for v in store.list_versions("iris", include_deleted=True)] == [3, 2, 1]


def test_deleting_a_model_and_registering_again(store: SqlRegistryStore) -> None:
    store.create_version("iris", new())
    store.set_alias("iris", "champion", 1, "bob")
    store.delete_model("iris", "carol")
    with pytest.raises(ModelNotFoundError):
        store.get_model("iris")
    assert store.list_models() == []
    assert [m.name for m in store.list_models(include_deleted=True)] == ["iris"]
    # history survives the delete
    assert store.alias_history("iris")[-1].to_version is None
    v = store.create_version("iris", new())
    assert v.version == 2
    assert store.get_model("iris").version_count == 1


def test_update_model_description_and_tags(store: SqlRegistryStore) -> None:
    store.create_version("iris", new())
    m = store.update_model("iris", description="flowers", tags={"owner": "ml"})
    assert (m.description, m.tags) == ("flowers", {"owner": "ml"})
    m = store.update_model("iris", tags={"tier": "1"})
    assert m.tags == {"owner": "ml", "tier": "1"}


def test_digest_in_use(store: SqlRegistryStore) -> None:
    assert not store.digest_in_use(DIGEST)
    store.create_version("iris", new())
    assert store.digest_in_use(DIGEST)


def test_failed_insert_gives_the_version_number_back(store: SqlRegistryStore) -> None:
    store.create_version("iris", new())
    with pytest.raises(Exception):
        store.create_version("iris", new(flavor=None))
    assert store.create_version("iris", new()).version == 2
