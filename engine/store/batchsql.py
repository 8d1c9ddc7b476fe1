"""A whole batch of queued writes in one statement: one round trip, one implicit transaction.

Theory of operation
-------------------
The writer (:mod:`engine.store.db`) applies the queue in batches, in order. Sent one statement at
a time, a batch of a few calls' writes cost a dozen round trips (``BEGIN``, one per run of an
operation, the checkpoint, ``COMMIT``), each a send and a wake-up on both sides of the socket:
under load that, not the SQL, was most of what the engine and PostgreSQL spent on the record.

So each writer connection gets a session function, ``pg_temp.cc_apply(batch jsonb)``, generated
from :data:`~engine.store.db.OPERATIONS` when the connection is taken: one ``CASE`` branch per
operation, holding that operation's own SQL with each ``$n`` replaced by the n-th argument taken
out of the entry's JSON and cast to the type PostgreSQL infers for ``$n`` (asked of the server by
preparing the statement, so no type is guessed here). The batch travels as one JSON array of
``[op, [args...]]`` and the function applies the entries in that order, the checkpoint last: one
statement, so all or nothing. PL/pgSQL keeps each branch's plan for the session.

The generated text is derived only from this module's and the store's own SQL; the values never
enter it (they stay in the JSON parameter). The function lives in the session's temporary schema:
each engine, whatever its version, has its own, and it goes with the connection.

A batch the function refuses is taken again one entry at a time with the plain statements, as
before, so a bad entry is still found and set aside alone.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CHECKPOINT_OP", "FUNCTION", "function_sql", "install"]

FUNCTION = "pg_temp.cc_apply"
CHECKPOINT_OP = "__checkpoint"   # (run, seq): the batch's last entry of each run, in the same statement
_PARAM = re.compile(r"\$(\d+)\b")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _value(index: int, pg_type: str) -> str:
    """The expression that takes argument ``index`` (0-based) out of the entry's ``cc_a`` as ``pg_type``."""
    if pg_type.endswith("[]"):
        # a JSON array (or null) into a PostgreSQL array of that type
        return (f"(CASE WHEN jsonb_typeof(cc_a->{index}) = 'array' THEN "
                f"ARRAY(SELECT jsonb_array_elements_text(cc_a->{index})) END)::{pg_type}")
    return f"(cc_a->>{index})::{pg_type}"


def function_sql(operations: dict[str, tuple[str, list[str]]]) -> str:
    """``CREATE FUNCTION`` text for ``operations``: name -> (SQL with ``$n``, type of each ``$n``)."""
    branches = []
    for name, (sql, types) in operations.items():
        if not _NAME.match(name):
            raise ValueError(f"operation name {name!r} is not a plain identifier")
        if "$f$" in sql:
            raise ValueError(f"operation {name!r}: its SQL holds the function's quote $f$")

        def arg(m: re.Match[str], types: list[str] = types, name: str = name) -> str:
            n = int(m.group(1))
            if not 1 <= n <= len(types):
                raise ValueError(f"operation {name!r}: ${n} but {len(types)} parameters")
            return _value(n - 1, types[n - 1])

        branches.append(f"      WHEN '{name}' THEN\n{_PARAM.sub(arg, sql.strip())};")
    # the variables' names are no column's; and a name both would be is the column's
    return (f"CREATE OR REPLACE FUNCTION {FUNCTION}(cc_batch jsonb) RETURNS void LANGUAGE plpgsql AS $f$\n"
            "#variable_conflict use_column\n"
            "DECLARE\n  cc_a jsonb;\n  cc_op text;\n"
            "BEGIN\n  FOR cc_i IN 0 .. jsonb_array_length(cc_batch) - 1 LOOP\n"
            "    cc_op := cc_batch->cc_i->>0;\n    cc_a := cc_batch->cc_i->1;\n    CASE cc_op\n"
            + "\n".join(branches)
            + "\n      ELSE RAISE EXCEPTION 'cc_apply: unknown operation %', cc_op;\n"
            "    END CASE;\n  END LOOP;\nEND\n$f$")


async def install(conn: Any, operations: dict[str, str], checkpoint: str) -> None:
    """Create the session function on ``conn`` for ``operations`` (and ``checkpoint``, whose
    arguments are (run, seq)); each statement is prepared once here to learn its parameter types."""
    statements = {**operations, CHECKPOINT_OP: checkpoint}
    parameters = {name: (await conn.prepare(sql)).get_parameters() for name, sql in statements.items()}
    oids = {t.oid for types in parameters.values() for t in types}
    names = dict(await conn.fetch("SELECT oid, format_type(oid, NULL) FROM pg_type WHERE oid = ANY($1::oid[])",
                                  sorted(oids)))
    typed = {name: (sql, [names[t.oid] for t in parameters[name]]) for name, sql in statements.items()}
    await conn.execute(function_sql(typed))
