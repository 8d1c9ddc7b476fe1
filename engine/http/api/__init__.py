"""The HTTP API under ``/api/v1``: agents, dispositions, campaigns, leads, DNC, live status, call
history; and its OpenAPI 3.1 document (``GET /api/v1/openapi.json``).

Theory of operation
-------------------
Each endpoint is declared once, with :func:`~engine.http.api.base.endpoint`: method, path, summary, the
JSON Schema of its body and of its answer, the errors it may give. :func:`setup` registers exactly
those routes and :func:`openapi` writes the document from exactly the same list, so the document
cannot list a route the server does not have, or miss one it has. Request bodies are checked
against their documented schema (:func:`check`, a small JSON Schema subset) before a handler runs:
what the document says is what the server enforces.

- **Auth**: ``Authorization: Bearer <token>``, tokens from ``http.tokens``. No token configured:
  the API is off and says so (403), whatever the bind address; a missing or wrong token is 401.
  Only the OpenAPI document is readable without a token.
- **Errors** are JSON ``{"error": "...", "field": "..."}``: 400 bad input (naming the field; what
  the edge refuses is listed in :mod:`.edge`), 404 unknown agent / campaign / call, 409 a request
  the agent's or call's state does not allow (the ACD's ``Refused`` / ``IllegalTransition``), 413
  a body over 1 MiB, 503 the database is away (for what needs it).
- **The engine** is read and asked through :class:`engine.runtime.view.EngineView` only (snapshots and
  named actions): agent requests go to the ACD as the keypad's do (``agent_request``); a disposition
  is the keypad's too (``disposition``: the dialer's ``on_disposition``, DNC, retries); leads are parsed by
  :func:`engine.services.leads.parse_row` as ``import-leads`` does; DNC goes through the dialer's gate
  (``add_dnc``: refused at once, and stored before the answer).
- **Records** (``record=`` on the declaration: a DNC entry, a lead, a campaign's control) are
  answered 2xx only once committed in PostgreSQL; while it is away, 503 says what is not stored.

One module per concern: :mod:`.base` (the route declaration, auth, the wrapper every request goes
through), :mod:`.schemas` (the shared JSON Schemas), :mod:`.edge` (request checking), then one per
resource: :mod:`.live`, :mod:`.agents`, :mod:`.campaigns`, :mod:`.donotcall`, :mod:`.history`, and
:mod:`.document` (the OpenAPI document). Importing this package registers every route, in that order.
"""

from __future__ import annotations

# Each module registers its routes as it is imported; this order is the document's order.
from engine.http.api import live  # noqa: F401  isort: skip
from engine.http.api import agents  # noqa: F401  isort: skip
from engine.http.api import campaigns  # noqa: F401  isort: skip
from engine.http.api import donotcall  # noqa: F401  isort: skip
from engine.http.api import history  # noqa: F401  isort: skip
from engine.http.api import document  # noqa: F401  isort: skip
from engine.http.api.base import MAX_CALLS, PREFIX, ROUTES, SPEED_TO_LEAD_PRIORITY, ApiError, Route, endpoint
from engine.http.api.document import openapi
from engine.http.api.edge import check, setup

__all__ = ["MAX_CALLS", "PREFIX", "ROUTES", "SPEED_TO_LEAD_PRIORITY", "ApiError", "Route", "check", "endpoint",
           "openapi", "setup"]
