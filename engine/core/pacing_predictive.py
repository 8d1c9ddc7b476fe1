"""The ``predictive`` pacer (engine/core/pacing.py has the theory of operation): estimators of
how calls end and how long agents are busy, learnt from what the pacer observes, and the dial
decision that keeps expected offers under expected free agents at every horizon. Pure.

The estimators are :class:`~engine.core.txn.Tracked` (their histograms tracked lists): part of a
pacer, they change only in its steps, and a step that raises takes back what it had learnt. What
they cache is kept in tuples (nothing to track: replaced whole)."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from operator import add, mul
from types import MappingProxyType

from engine.core.common import Event
from engine.core.pacing_model import DialResult, Handled, Pacer, PacingSettings, Snapshot
from engine.core.txn import TDict, TList, Tracked, atomic

__all__ = ["Predictive"]


# -- predictive: estimators ----------------------------------------------------------------------
MEMORY = 4000.0  # observations an estimate remembers (counts halve past it): a drifting list is followed
class _Outcomes(Tracked):
    """Durations of things that end one of two ways ("hit" or not), binned, for conditional
    questions: *given it has lasted ``age`` s and not ended, how likely is it to end as a hit within
    ``x`` more seconds?* = (hits ending in (age, age+x]) / (all ending after age). Counts decay
    (halve past ``memory`` observations) so a drifting list is followed."""

    def __init__(self, bin_width: float, max_seconds: float, memory: float = MEMORY) -> None:
        self.w = bin_width
        self.nbins = int(math.ceil(max_seconds / bin_width)) + 1
        self.ends = TList([0.0] * self.nbins)
        self.hits = TList([0.0] * self.nbins)
        self.n = 0.0
        self.n_hits = 0.0
        self.memory = memory
        self._cum: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def bin(self, seconds: float) -> int:
        return min(self.nbins - 1, max(0, int(seconds / self.w)))

    def add(self, seconds: float, hit: bool, weight: float = 1.0) -> None:
        b = self.bin(seconds)
        self.ends[b] += weight
        self.n += weight
        if hit:
            self.hits[b] += weight
            self.n_hits += weight
        if self.n > self.memory:
            self.ends = TList([c / 2 for c in self.ends])
            self.hits = TList([c / 2 for c in self.hits])
            self.n /= 2
            self.n_hits /= 2

    def freeze(self) -> None:
        """Take the cumulative counts that :meth:`hit_within` answers from (until the next freeze):
        ends[:b] and hits[:b] summed, for b = 0..nbins (ended before bin b)."""
        ce, ch = [0.0], [0.0]
        e = h = 0.0
        for a, b in zip(self.ends, self.hits):
            e += a
            h += b
            ce.append(e)
            ch.append(h)
        self._cum = (tuple(ce), tuple(ch))

    def hit_within(self, age: float, xs: list[float]) -> list[float]:
        """P(ends as a hit within age + x | not ended by age), for each x, from the counts as they
        were at the last :meth:`freeze` (linear inside a bin)."""
        if self._cum is None:
            self.freeze()
        ce, ch = self._cum  # type: ignore[misc]
        w, last = self.w, self.nbins - 1

        def before(cum: tuple[float, ...], counts: list[float], t: float) -> float:
            k = int(t / w)
            if k > last:
                return cum[-1]
            return cum[k] + (t / w - k) * counts[k]

        alive = ce[-1] - before(ce, self.ends, age)
        if alive <= 1e-9:
            return [0.0] * len(xs)
        h0 = before(ch, self.hits, age)
        return [max(0.0, before(ch, self.hits, age + x) - h0) / alive for x in xs]

    @property
    def hit_rate(self) -> float:
        return self.n_hits / self.n if self.n else 0.0


class _Handling(Tracked):
    """Talk then wrap-up, jointly: for an agent on a call for ``e`` s, P(free within y s).

    Free = talk end + wrap-up, and the two are not independent (with AMD off, a machine is a short
    "talk" with no wrap-up; a person a long talk and a full wrap-up). So per elapsed-second row e
    we keep, for each finished call with talk T > e and T + W - e <= ``horizon``, a count at
    d = T + W - e; and the survival count #(T > e) from a histogram of T. Then
    P(free within y | e) = #(T > e, T + W - e <= y) / #(T > e). Each observation touches at most
    ``horizon`` rows. Rows with few survivors borrow the last well-filled row (a long call's
    hazard is about that of a shorter long call). Counts halve past ``memory`` calls."""

    MAX_E = 3600
    MIN_ALIVE = 8.0

    def __init__(self, horizon: int, memory: float = MEMORY) -> None:
        self.h = horizon
        self.memory = memory
        self.talk = TList([0.0] * (self.MAX_E + 2))
        self.n = 0.0
        self.rows: TDict[int, TList[float]] = TDict()
        self.version = 0
        self._alive: tuple[float, ...] | None = None
        self.cap_e = 0
        self.cache: TDict[int, tuple[tuple[float, ...], tuple[float, ...]] | None] = TDict()
        self._cache_version = -1
        self._built_at = 0.0

    def add(self, talk: float, wrap: float, weight: float = 1.0) -> None:
        # Row e stands for agents on call for e to e + 1 s, as if for e + 0.5 s: a call counts in it
        # when T > e + 0.5, i.e. e < round(T), and is free d = T + W - (e + 0.5) later.
        t = min(self.MAX_E + 1, math.floor(talk + 0.5))
        self.talk[t] += weight
        self.n += weight
        free = talk + wrap - 0.5
        lo = max(0, math.ceil(free - self.h))
        for e in range(lo, min(t, self.MAX_E + 1)):
            d = math.ceil(free - e)
            row = self.rows.get(e)
            if row is None:
                row = self.rows[e] = TList([0.0] * (self.h + 1))
            row[max(0, min(self.h, d))] += weight
        if self.n > self.memory:  # forget half, as _Outcomes does
            self.talk = TList([c / 2 for c in self.talk])
            for row in self.rows.values():
                row[:] = [c / 2 for c in row]
            self.n /= 2
            self._built_at /= 2
        # rebuild the normalised rows when the data grew by 5% (and early on, often)
        if self.n >= self._built_at * 1.05 + 2:
            self.version += 1

    def prepare(self) -> None:
        if self._cache_version == self.version:
            return
        self._cache_version = self.version
        self._built_at = self.n
        self.cache = TDict()
        alive = [0.0] * (self.MAX_E + 2)
        s = 0.0
        for e in range(self.MAX_E + 1, -1, -1):  # alive[e] = #(T > e + 0.5): round(T) > e
            alive[e] = s
            s += self.talk[e]
        self._alive = tuple(alive)
        cap = 0
        for e in range(self.MAX_E + 1):
            if alive[e] >= self.MIN_ALIVE:
                cap = e
            else:
                break
        self.cap_e = cap

    def free_within(self, elapsed: float, ys: list[int]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """P(free within y) for each y (whole seconds, <= horizon) and its p(1 - p); None when ~0.
        Cached per elapsed second until the data grows (the same ``ys`` every time)."""
        self.prepare()
        e = min(int(elapsed), self.cap_e)
        cache = self.cache
        if e in cache:
            return cache[e]
        row = self.rows.get(e)
        alive = self._alive[e] if self._alive else 0.0
        if row is None or alive <= 0:
            cache[e] = None
            return None
        out, acc, k = [], 0.0, 0
        for y in ys:
            while k <= y:
                acc += row[k]
                k += 1
            out.append(min(1.0, acc / alive))
        result = (tuple(out), tuple(p * (1.0 - p) for p in out)) if out[-1] > 1e-6 else None
        cache[e] = result
        return result


class Predictive(Pacer):
    """State-aware pacing with an abandon controller.

    The math
    --------
    Fix a grid of horizons tau (1 .. about the longest ring, in seconds). For each tau:

    *Supply* S(tau): agents that will have been free by tau + g (g = connect grace, since an
    offer may wait g for an agent): available now + wrap-ups ending by then (their time left is in
    the snapshot) + sum over on-call agents of P(free within tau + g | on call for e s), from
    :class:`_Handling`.

    *Demand* D(tau): offers that will have arrived by tau: waiting answers + sum over calls in
    flight of P(offered within tau | age), from :class:`_Outcomes` of ring times (answered = hit)
    shifted by the mean AMD time and times P(live | answered); screening calls likewise from AMD
    times. A new dial adds f(tau) = P(offered within tau | age 0).

    Each term is a Bernoulli, so Var = sum p(1 - p) over both sides, plus the estimate's own
    uncertainty: the answer probability q is known to a relative variance (1 - q) / (q (n + 1))
    after n dials, which scales all demand together: + (D + n f)^2 (1 - q) / (q (n + 1)).

    Dial the largest n with, at every tau,
        D(tau) + n f(tau) + z * sqrt(Var(tau, n)) <= S(tau).
    Checking every horizon (not just one) keeps offers from arriving before their agents: a
    wrap-up ending in 25 s is only "used" by dials whose answers come that late.

    A floor keeps it from ever doing worse than progressive: if even with *every* call in flight
    answering there is an agent for each (available now or a wrap-up ending by then), the horizon is
    safe whatever z says (``worst <= sure``).

    The abandon controller picks z. With L live answers and A abandons in the campaign's window
    and target p, the unspent budget is B = p L - A; its own noise is about s = sqrt(p L + 1)
    (abandons are roughly Poisson). The controller keeps B near a small reserve R = 2 + s / 2
    (two abandons plus half its noise: the window's rate ends just under p, by a margin that
    shrinks like 1/sqrt(L)): with e = (B - R) / s,
        z = z_I - KP e,    z_I <- z_I - KI e   for each new live answer,
    clamped to [Z_MIN, Z_MAX]. Budget in hand (e > 0) lowers z, even below zero (dial past the
    mean: the budget pays for it); abandons running ahead raise it. The integral term finds the z
    the traffic needs (about 1.5-2 here) whatever it is; the gains are low because the margin
    swinging back and forth costs occupancy at the same abandon rate.

    Why not one horizon, or a fixed ratio: a fixed ratio cannot see that the agents are about to
    be free or that five calls are already ringing; one horizon either dials before agents are
    free (abandons) or after (idle). Variants tried and measured (a weighted "marginal risk of
    the n-th dial" rule, fewer or more horizons, decision intervals 0.5-2 s, a bonus when agents
    are idle now) all landed within 0.2 occupancy points of this at the same abandon rate; the
    limit is what can be known: which answered call is a machine (AMD off), and when a ringing
    call will answer.

    Where it stops (standard scenario, 50 agents, 8 h, seeds 1-4): 94.6% occupancy at 2.9%.
    Measured, each landing within +-0.2 points at the same abandon rate: controller gains
    (KP 0.15-1, KI 0.0007-0.004), a smaller reserve, ignoring horizons a new dial barely reaches,
    an expected-excess rule (sigma * L((S - D) / sigma) <= L(z), the normal loss function) in place
    of the quantile, a margin tilted by horizon (z (1 + a (tau / tau_max - 1/2)), a in -1.6..0.6),
    and no estimate-uncertainty term. A constant margin (no controller) traces
    the frontier the controller rides: 94.7-95.3% costs 2.6-4.1% abandons depending on the seed.
    With answer times made almost exact (sigma 0.01) occupancy *falls* (94.1%): the spread of
    answers is what lets the 2 s grace pool offers; the count of answers (a Bernoulli per call)
    is the uncertainty that remains. Machines cost the most: with AMD off each one is a 10 s "call"
    the pacer cannot tell from a person's; at 0 s machine handling the same pacer reaches 94.7-95.2%.
    """

    name = "predictive"
    HORIZONS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 23, 26, 30, 35, 40, 50, 60)
    Z0, KP, KI, RESERVE_ABS, RESERVE_REL, Z_MIN, Z_MAX = 1.0, 1.0, 0.002, 2.0, 0.5, -2.5, 4.0
    # priors, each worth a few observations (domain.md's literature values)
    PRIOR_DIALS, PRIOR_ANSWER, PRIOR_ANSWER_MEDIAN, PRIOR_ANSWER_SIGMA = 20, 0.4, 8.0, 0.5
    PRIOR_CALLS, PRIOR_TALK_MEAN, PRIOR_TALK_CV, PRIOR_WRAPUP = 20, 120.0, 1.0, 15.0
    PRIOR_SCREENS, PRIOR_LIVE = 4, 0.75

    def __init__(self, settings: PacingSettings | None = None) -> None:
        super().__init__(settings)
        s = self.settings
        self.max_ring = s.ring_timeout_seconds + 2.0
        self.grace = s.connect_grace_seconds
        self.ring = _Outcomes(0.25, self.max_ring)          # hit = answered
        self.screen = _Outcomes(0.1, 15.0)                  # hit = judged live
        top = int(math.ceil(s.ring_timeout_seconds + 2.0))
        self.taus = (*[t for t in self.HORIZONS if t < top], top)
        self._ys = tuple(int(t + self.grace) for t in self.taus)
        self.handling = _Handling(int(math.ceil(self.taus[-1] + self.grace)) + 1)
        self.z = self.z_integral = self.Z0
        self._last_live = 0
        self._screen_sum = 0.0
        self._curves: MappingProxyType[str, tuple[tuple[tuple[float, ...], ...], ...]] = MappingProxyType({})
        self._cache_n = -1.0
        self._priors()

    def _priors(self) -> None:
        k = self.PRIOR_DIALS
        answered = round(k * self.PRIOR_ANSWER)
        for i in range(answered):  # lognormal quantiles
            u = (i + 0.5) / answered
            self.ring.add(self.PRIOR_ANSWER_MEDIAN * math.exp(self.PRIOR_ANSWER_SIGMA * _norm_ppf(u)), True)
        for i in range(k - answered):  # the rest: half busy (3 s), half ring out
            self.ring.add(3.0 if i % 2 else self.settings.ring_timeout_seconds, False)
        for i in range(self.PRIOR_SCREENS):
            self.screen.add(0.0, i < self.PRIOR_SCREENS * self.PRIOR_LIVE)
        sigma2 = math.log1p(self.PRIOR_TALK_CV ** 2)
        mu = math.log(self.PRIOR_TALK_MEAN) - sigma2 / 2
        for i in range(self.PRIOR_CALLS):
            u = (i + 0.5) / self.PRIOR_CALLS
            self.handling.add(math.exp(mu + math.sqrt(sigma2) * _norm_ppf(u)), self.PRIOR_WRAPUP)

    # -- learning --------------------------------------------------------------------------------
    def learn(self, event: Event, now: float) -> None:
        super().learn(event, now)
        if isinstance(event, DialResult):
            answered = event.result in ("live", "machine")
            self.ring.add(event.ring_seconds, answered)
            if answered:
                self.screen.add(event.screen_seconds, event.result == "live")
                self._screen_sum += event.screen_seconds
        elif isinstance(event, Handled):
            self.handling.add(event.talk_seconds, event.wrapup_seconds)

    # -- forecasting -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Rebuild the offer curves when the dial data grew by 3%: for each age bin b of a call in
        flight and each horizon j, P(offered within tau_j); kept as columns (one list over age bins
        per horizon) so a forecast is a few dot products with the histogram of ages."""
        n = self.ring.n
        if self._cache_n >= 0 and n < self._cache_n * 1.03 + 5:
            return
        self._cache_n = n
        self.ring.freeze()
        self.screen.freeze()
        scr = self.screen
        self.p_live = scr.hit_rate
        self.screen_mean = self._screen_sum / scr.n if scr.n else 0.0
        live, shift, taus = self.p_live, self.screen_mean, self.taus
        xs = [max(0.0, t - shift) for t in taus]  # a ringing call is offered after its answer + AMD
        ring_rows = [[live * v for v in self.ring.hit_within((b + 0.5) * self.ring.w, xs)]
                     for b in range(self.ring.nbins)]
        if self._screen_sum > 0:  # AMD is judging calls
            screen_rows = [scr.hit_within((b + 0.5) * scr.w, [float(t) for t in taus]) for b in range(scr.nbins)]
        else:
            screen_rows = [[live] * len(taus)]  # no AMD: an answer is offered at once
        self.new_dial = tuple(live * v for v in self.ring.hit_within(0.0, xs))
        curves = {}
        for name, lists in (("ring", ring_rows), ("screen", screen_rows)):
            rows = tuple(map(tuple, lists))
            vrows = tuple(tuple(x * (1.0 - x) for x in r) for r in rows)
            curves[name] = (rows, vrows, tuple(zip(*rows)), tuple(zip(*vrows)))
        self._curves = MappingProxyType(curves)

    def _controller(self, snap: Snapshot) -> float:
        """The margin z from the campaign's abandon counters (a PI controller on the budget)."""
        p = self.settings.abandon_target
        live = snap.live_answers
        budget = p * live - snap.abandoned
        noise = math.sqrt(p * live + 1.0)
        error = (budget - self.RESERVE_ABS - self.RESERVE_REL * noise) / noise
        new_live = max(0, live - self._last_live)
        self._last_live = live
        if new_live:
            self.z_integral = min(self.Z_MAX, max(self.Z_MIN, self.z_integral - self.KI * error * new_live))
        return min(self.Z_MAX, max(self.Z_MIN, self.z_integral - self.KP * error))

    def forecast(self, snap: Snapshot) -> tuple[list[float], list[float], list[float]]:
        """(supply, demand, variance) at each horizon, before any new dial; also sets ``worst``
        (offers if every call in flight answered) and ``sure`` (agents free by tau + grace for
        certain: available, wrap-ups ending). It refreshes the cached curves: a transaction."""
        return atomic(self, self._forecast, snap)

    def _forecast(self, snap: Snapshot) -> tuple[list[float], list[float], list[float]]:
        self._refresh()
        taus, m = self.taus, len(self.taus)
        grace = self.grace
        waiting = float(snap.waiting)
        demand, var = [waiting] * m, [0.0] * m
        # calls in flight, by age bin: few, row by row; many, a histogram dotted with each column
        for ages, model, name in ((snap.ringing, self.ring, "ring"), (snap.screening, self.screen, "screen")):
            if not ages:
                continue
            rows, vrows, cols, vcols = self._curves[name]
            inv, top = 1.0 / model.w, len(rows) - 1
            if len(ages) <= 12:
                for age in ages:
                    b = int(age * inv)
                    if b > top:
                        b = top
                    demand = list(map(add, demand, rows[b]))
                    var = list(map(add, var, vrows[b]))
                continue
            counts = [0.0] * (top + 1)
            for b, c in Counter([int(age * inv) for age in ages]).items():
                counts[b if b < top else top] += c
            for j in range(m):
                demand[j] += sum(map(mul, counts, cols[j]))
                var[j] += sum(map(mul, counts, vcols[j]))
        worst = waiting + len(snap.ringing) + len(snap.screening)  # if every call in flight answered
        # agents: available now, wrap-ups ending (their time left is known), calls ending
        handling = self.handling
        handling.prepare()
        cap, cache, ys = handling.cap_e, handling.cache, self._ys
        keys = [k if k < cap else cap for k in map(int, snap.on_call)]
        for k in keys:
            if k not in cache:
                handling.free_within(k, ys)
        curves = [c for c in map(cache.__getitem__, keys) if c is not None]
        qs = [c[0] for c in curves]
        vs = [var, *(c[1] for c in curves)]
        available = float(snap.available)
        supply = [available + x for x in map(sum, zip(*qs))] if qs else [available] * m
        var = list(map(sum, zip(*vs)))
        sure = [available] * m
        if snap.wrapup:
            left = sorted(snap.wrapup)
            for j in range(m):
                ending = bisect.bisect_right(left, taus[j] + grace)
                supply[j] += ending
                sure[j] += ending
        if snap.inbound_waiting or snap.inbound_rate:
            # Blending: inbound callers waiting now, and those arriving before each horizon (Poisson),
            # take agents coming free before a dial placed now is answered.
            for j in range(m):
                arriving = snap.inbound_rate * taus[j]
                claims = snap.inbound_waiting + arriving
                supply[j] -= claims
                sure[j] -= claims
                var[j] += arriving
        self.worst, self.sure = worst, tuple(sure)
        return supply, demand, var

    def decide(self, snap: Snapshot, now: float) -> int:
        if snap.logged_in - snap.paused <= 0:
            return 0
        supply, demand, var = self._forecast(snap)
        z = self.z = self._controller(snap)
        f = self.new_dial
        q = max(1e-3, self.ring.hit_rate * self.p_live)
        rel = (1.0 - q) / (q * (self.ring.n + 1.0))
        cap = self._cap(snap, 10 ** 6)
        m = len(f)

        worst, sure = self.worst, self.sure

        def fits(n: int) -> bool:
            for j in range(m):
                fj = f[j]
                if worst + (n if fj > 0.0 else 0) <= sure[j]:
                    continue  # even if every call answered by then, an agent would be free for it
                d = demand[j] + n * fj
                v = var[j] + n * fj * (1.0 - fj) + rel * d * d
                if d + z * math.sqrt(v) > supply[j]:
                    return False
            return True

        if cap <= 0 or not fits(1):
            return 0
        lo, hi = 1, 2  # lo fits; grow hi until it does not, then bisect
        while hi <= cap and fits(hi):
            lo, hi = hi, hi * 2
        hi = min(hi, cap + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        return lo


def _norm_ppf(u: float) -> float:
    """Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
         -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
         -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
         4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
    lo = 0.02425
    if u < lo:
        q = math.sqrt(-2 * math.log(u))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if u > 1 - lo:
        return -_norm_ppf(1 - u)
    q = u - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
