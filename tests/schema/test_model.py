"""The schema model: validation, the content-derived version, and durability in the engine across restarts."""

import uuid

import pytest

from widecol.errors import AlreadyExists, ConfigurationException, InvalidRequest
from widecol.schema.model import (
    CLUSTERING,
    PARTITION_KEY,
    STATIC,
    ColumnDef,
    KeyspaceDef,
    Schema,
    SchemaStore,
    TableDef,
    check_replication,
)
from widecol.storage.mutation import Mutation

SIMPLE = {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "1"}


def users(keyspace="ks", table_id=None):
    return TableDef(
        keyspace,
        "users",
        table_id or uuid.UUID(int=1),
        (
            ColumnDef("id", "uuid", PARTITION_KEY, 0),
            ColumnDef("at", "timestamp", CLUSTERING, 0, descending=True),
            ColumnDef("name", "text"),
            ColumnDef("tags", "set<text>"),
        ),
    )


def test_replication_is_validated_and_normalised():
    assert check_replication({"class": "SimpleStrategy", "replication_factor": 3}) == {
        "class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3",
    }
    assert check_replication({"class": "NetworkTopologyStrategy", "dc1": "3", "dc2": "2"})["dc2"] == "2"
    with pytest.raises(ConfigurationException, match="requires a replication_factor"):
        check_replication({"class": "SimpleStrategy"})
    with pytest.raises(ConfigurationException, match="must be numeric"):
        check_replication({"class": "SimpleStrategy", "replication_factor": "three"})
    with pytest.raises(ConfigurationException, match="Unable to find replication strategy"):
        check_replication({"class": "Nope"})


def test_table_definition_is_validated():
    with pytest.raises(InvalidRequest, match="PRIMARY KEY"):
        TableDef("ks", "t", uuid.UUID(int=2), (ColumnDef("a", "int"),))
    with pytest.raises(InvalidRequest, match="Duplicate"):
        TableDef("ks", "t", uuid.UUID(int=2), (ColumnDef("a", "int", PARTITION_KEY, 0), ColumnDef("a", "int")))
    with pytest.raises(InvalidRequest, match="Static columns"):
        TableDef("ks", "t", uuid.UUID(int=2), (ColumnDef("a", "int", PARTITION_KEY, 0), ColumnDef("s", "int", STATIC)))
    table = users()
    assert [c.name for c in table.primary_key] == ["id", "at"]
    with pytest.raises(InvalidRequest, match="Undefined column name nope"):
        table.column("nope")


def test_schema_changes_and_their_errors():
    schema = Schema().with_keyspace(KeyspaceDef("ks", SIMPLE))
    with pytest.raises(AlreadyExists):
        schema.with_keyspace(KeyspaceDef("ks", SIMPLE))
    assert schema.with_keyspace(KeyspaceDef("ks", SIMPLE), if_not_exists=True) is schema
    schema = schema.with_table(users())
    with pytest.raises(AlreadyExists, match="ks.users"):
        schema.with_table(users())
    with pytest.raises(InvalidRequest, match="Keyspace 'other' does not exist"):
        schema.with_table(users("other"))
    assert schema.table("ks", "users").name == "users"
    assert list(schema.without_table("ks", "users").tables()) == []


def test_version_depends_on_content_only():
    a = Schema().with_keyspace(KeyspaceDef("a", SIMPLE)).with_keyspace(KeyspaceDef("b", SIMPLE)).with_table(users("a"))
    b = Schema().with_keyspace(KeyspaceDef("b", SIMPLE)).with_keyspace(KeyspaceDef("a", SIMPLE)).with_table(users("a"))
    assert a.version() == b.version()
    assert a.version() != a.without_table("a", "users").version()
    assert a.version() != Schema().version()


def test_schema_survives_restart_and_drop_removes_data(open_engine):
    engine = open_engine()
    store = SchemaStore(engine)
    schema = store.schema.with_keyspace(KeyspaceDef("ks", SIMPLE)).with_table(users())
    store.commit(schema, timestamp=10)
    table = store.schema.table("ks", "users")
    engine.apply(Mutation(table.storage_id, b"k").set(b"", b"name", b"ann", 11))
    version = store.schema.version()
    engine.commitlog.close()  # crash: nothing flushed
    engine.closing = True

    engine = open_engine()
    store = SchemaStore(engine)
    assert store.schema.version() == version
    assert engine.table(table.storage_id).read(b"k")[0][1][b"name"][1] == b"ann"

    store.commit(store.schema.without_keyspace("ks"), timestamp=20)
    assert table.storage_id not in engine.tables
    engine.close()
    engine = open_engine()
    assert SchemaStore(engine).schema.keyspaces == {}


def test_schema_mutations_merged_on_another_node_give_the_same_schema(tmp_path, clock):
    from widecol.storage.engine import Engine, EngineOptions

    a = Engine.open(tmp_path / "a", EngineOptions(background_compaction=False), clock=clock)
    b = Engine.open(tmp_path / "b", EngineOptions(background_compaction=False), clock=clock)
    try:
        store_a, store_b = SchemaStore(a), SchemaStore(b)
        store_a.commit(store_a.schema.with_keyspace(KeyspaceDef("ks", SIMPLE)).with_table(users()), timestamp=10)
        assert store_b.merge(store_a.schema_mutations()) is True
        assert store_b.schema.version() == store_a.schema.version()
        table = store_b.schema.table("ks", "users")
        assert table.storage_id in b.tables  # the engine table exists, ready for writes
        assert store_b.merge(store_a.schema_mutations()) is False  # idempotent

        # A drop on b reaches a by the same path, and its tombstones beat the older definition.
        store_b.commit(store_b.schema.without_keyspace("ks"), timestamp=20)
        assert store_a.merge(store_b.schema_mutations()) is True
        assert store_a.schema.keyspaces == {}
        assert table.storage_id not in a.tables
    finally:
        a.close()
        b.close()
