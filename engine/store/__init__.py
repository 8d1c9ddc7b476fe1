"""The store: every SQL statement the engine runs, and nothing else of the engine's logic.

The rest of the engine never writes SQL: it calls the functions here, plain ``async def``\\ s that
take a connection or a pool and plain values, and return rows or values. Transactions stay with
the caller that needs them (``async with conn.transaction():`` around several of these calls).

- :mod:`.db`: the pool, and the ordered, journalled write queue with its named write operations
  (:data:`.db.OPERATIONS`); :mod:`.journal` its file on local disk; :mod:`.migrate` the schema
  (``migrations/*.sql`` at the top of the checkout, or where the wheel installed them);
- :mod:`.hopper`: leasing a campaign's next leads (``FOR UPDATE SKIP LOCKED``) and moving them on;
  :mod:`.outbound`: the rest of outbound (dial attempts, the compliance gate's facts and
  decisions, campaign control, the dialer's counters, what the what-if command reads);
  :mod:`.leads`: leads in (a CSV import's COPY and merge, one lead from the API); :mod:`.dnc`:
  the do-not-call lists;
- :mod:`.acd`: the agents restored at start; :mod:`.calls`: what reconciliation reads after a
  restart; :mod:`.webhooks`: the outbox (its write operations join :data:`.db.OPERATIONS`);
- :mod:`.history`: calls and what happened to them (the API's ``/calls``, ``callcenter calls``,
  ``routing``, ``attempts``); :mod:`.gdpr`: recording retention, and one number's rows exported or
  erased; :mod:`.reports`: the reports' aggregates and today's service level.
"""
