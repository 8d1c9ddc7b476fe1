"""The webhook outbox (``webhook_outbox``): its two write operations, added to the write queue's
table (:data:`engine.store.db.OPERATIONS`) when this module is imported, and what is still owed."""

from __future__ import annotations

from typing import Any

from engine.store.db import OPERATIONS

__all__ = ["owed"]

# Idempotent like every other queued write.
OPERATIONS.update({
    # (id, instance, url, kind, body, at)
    "webhook_queued": """
        INSERT INTO webhook_outbox (id, instance, url, kind, body, created_at, next_at)
        VALUES ($1, $2, $3, $4, $5, to_timestamp($6), to_timestamp($6)) ON CONFLICT (id) DO NOTHING""",
    # (id, attempts, at, status, error, delivered, failed, next_at)
    "webhook_tried": """
        UPDATE webhook_outbox SET attempts = GREATEST(attempts, $2), last_status = $4, last_error = $5,
               delivered_at = CASE WHEN $6 THEN to_timestamp($3) END,
               failed_at = CASE WHEN $7 THEN to_timestamp($3) END, next_at = to_timestamp($8)
        WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL""",
})


async def owed(pool: Any, instance: str) -> list[Any]:
    """The deliveries ``instance`` has neither delivered nor given up, oldest first
    (id, url, kind, body, attempts, due: epoch seconds)."""
    return await pool.fetch("""
        SELECT id, url, kind, body, attempts, extract(epoch FROM next_at) AS due FROM webhook_outbox
        WHERE instance = $1 AND delivered_at IS NULL AND failed_at IS NULL ORDER BY created_at""", instance)
