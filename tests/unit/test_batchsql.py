"""The batch function's text (engine/store/batchsql.py): what it is made of, and what it refuses."""

from __future__ import annotations

import pytest

from engine.store.batchsql import CHECKPOINT_OP, function_sql


def test_each_parameter_becomes_the_entrys_argument_cast_to_its_type():
    sql = function_sql({"put": ("INSERT INTO t (a, b, c) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                ["uuid", "text[]", "double precision"]),
                        CHECKPOINT_OP: ("UPDATE k SET seq = $2 WHERE run = $1", ["text", "bigint"])})
    assert "WHEN 'put' THEN" in sql and f"WHEN '{CHECKPOINT_OP}' THEN" in sql
    assert "VALUES ((cc_a->>0)::uuid, (CASE WHEN jsonb_typeof(cc_a->1) = 'array' THEN " \
           "ARRAY(SELECT jsonb_array_elements_text(cc_a->1)) END)::text[], (cc_a->>2)::double precision)" in sql
    assert "SET seq = (cc_a->>1)::bigint WHERE run = (cc_a->>0)::text;" in sql
    assert "$1" not in sql and "$2" not in sql and "$3" not in sql
    assert "ELSE RAISE EXCEPTION" in sql


@pytest.mark.parametrize("ops, message", [
    ({"bad name'": ("SELECT 1", [])}, "not a plain identifier"),
    ({"q": ("SELECT $f$x$f$", [])}, "quote"),
    ({"two": ("SELECT $1, $2", ["text"])}, r"\$2 but 1 parameters"),
])
def test_what_cannot_be_made_into_the_function_is_refused(ops, message):
    with pytest.raises(ValueError, match=message):
        function_sql(ops)
