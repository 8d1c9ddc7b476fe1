"""Queueing formulas (pure): Erlang C for staffing and validation, Erlang A for abandonment.

Definitions as in shared/docs/domain.md. Traffic ``a`` is in Erlangs (arrival rate x mean handle
time); ``n`` is the number of agents; times are in seconds.
"""

from __future__ import annotations

import math

__all__ = ["agents_needed", "asa", "erlang_a", "erlang_c", "service_level"]


def erlang_c(a: float, n: int) -> float:
    """Probability that a call waits (M/M/N, infinite patience). 1.0 when the queue is unstable."""
    if a <= 0:
        return 0.0
    if n <= a:
        return 1.0
    # Erlang B by its stable recurrence, then C from B.
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return n * b / (n - a * (1 - b))


def service_level(a: float, n: int, aht: float, t: float) -> float:
    """Share of calls answered within ``t`` seconds."""
    if n <= a:
        return 0.0
    return 1.0 - erlang_c(a, n) * math.exp(-(n - a) * t / aht)


def asa(a: float, n: int, aht: float) -> float:
    """Mean wait of all calls (answered ones, as nobody abandons in Erlang C)."""
    if n <= a:
        return math.inf
    return erlang_c(a, n) * aht / (n - a)


def agents_needed(rate_per_second: float, aht: float, sl_seconds: float, sl_fraction: float,
                  limit: int = 10_000) -> int:
    """The fewest agents that reach ``sl_fraction`` of calls answered within ``sl_seconds``."""
    a = rate_per_second * aht
    if a <= 0:
        return 0
    n = max(1, math.floor(a) + 1)
    while n < limit and service_level(a, n, aht, sl_seconds) < sl_fraction:
        n += 1
    return n


def erlang_a(rate_per_second: float, aht: float, patience: float, n: int, max_states: int = 100_000) -> dict[str, float]:
    """M/M/N+M (exponential patience) by its birth-death chain: up-rate lambda, down-rate
    min(k, n) mu + max(0, k - n) theta.

    Returns ``p_wait`` (an arriving call finds all agents busy), ``p_abandon`` (theta E[queue] /
    lambda) and ``wait_all`` (mean time in queue of every arriving call, by Little's law).
    """
    lam, mu, theta = rate_per_second, 1.0 / aht, 1.0 / patience
    logp = [0.0]  # unnormalised log-probabilities of k calls in the system
    for k in range(1, max_states):
        down = min(k, n) * mu + max(0, k - n) * theta
        logp.append(logp[-1] + math.log(lam) - math.log(down))
        if k > n and logp[-1] < max(logp) - 60:
            break
    top = max(logp)
    p = [math.exp(x - top) for x in logp]
    total = sum(p)
    p = [x / total for x in p]
    queue_len = sum((k - n) * p[k] for k in range(n, len(p)))
    return {"p_wait": sum(p[n:]), "p_abandon": theta * queue_len / lam, "wait_all": queue_len / lam}
