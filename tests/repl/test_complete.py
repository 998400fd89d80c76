"""Tab completion: keywords, shell commands, keyspaces, tables and columns, from what is typed so far."""

from widecol.cql.describe import SchemaInfo
from widecol.repl_complete import complete

INFO = SchemaInfo.from_rows(
    [{"keyspace_name": "shop", "replication": {}}, {"keyspace_name": "system_schema", "replication": {}}],
    [{"keyspace_name": "shop", "table_name": "users"}, {"keyspace_name": "shop", "table_name": "orders"},
     {"keyspace_name": "system_schema", "table_name": "tables"}],
    [{"keyspace_name": "shop", "table_name": "users", "column_name": n, "kind": k, "position": p}
     for n, k, p in [("id", "partition_key", 0), ("name", "regular", -1), ("Nick", "regular", -1)]],
)


def test_first_word_offers_statements_and_shell_commands():
    prefix, words = complete("se", INFO, None)
    assert prefix == "se" and words == ["select"]
    assert complete("CONS", INFO, None)[1] == ["CONSISTENCY"]
    assert "DESCRIBE" in complete("", INFO, None)[1]


def test_table_names_after_from_into_update():
    assert complete("SELECT * FROM u", INFO, "shop") == ("u", ["users"])
    assert complete("insert into o", INFO, "shop") == ("o", ["orders"])
    assert complete("UPDATE ", INFO, "shop")[1][:2] == ["orders", "users"]
    assert "shop." in complete("SELECT * FROM ", INFO, None)[1]
    assert complete("SELECT * FROM shop.", INFO, None) == ("", ["orders", "users"])
    assert complete("SELECT * FROM system_schema.ta", INFO, None) == ("ta", ["tables"])


def test_columns_of_the_table_in_the_statement():
    assert complete("SELECT * FROM shop.users WHERE na", INFO, None) == ("na", ["name"])
    words = complete("SELECT * FROM users WHERE ", INFO, "shop")[1]
    assert words[:3] == ["id", '"Nick"', "name"]
    assert complete("INSERT INTO users (id, n", INFO, "shop")[1] == ['"Nick"', "name", "not", "null"]


def test_keyspaces_after_use_and_levels_after_consistency():
    assert complete("USE s", INFO, None) == ("s", ["shop", "system_schema"])
    assert complete("consistency lo", INFO, None)[1] == ["local_quorum", "local_serial", "local_one"]
    assert complete("PAGING ", INFO, None)[1] == ["ON", "OFF"]
    assert complete("DESC TABLE ", INFO, "shop")[1][:2] == ["orders", "users"]


def test_only_the_statement_being_typed_counts():
    assert complete("SELECT * FROM users; sel", INFO, "shop") == ("sel", ["select"])
    assert complete("SELECT * FROM users WHERE name = 'a b", INFO, "shop") == ("", [])


def test_without_a_schema_keywords_still_complete():
    assert complete("SELECT * FROM ", None, "shop")[1] == []
    assert complete("SELECT * FROM t WH", None, "shop")[1] == ["WHERE"]
