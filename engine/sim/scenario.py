"""The simulator's scenario file: YAML into frozen dataclasses, every error at its file and line.

::

    hours: 100                     # simulated time in which calls arrive (the queue then drains)
    seed: 1
    arrivals_per_hour: 200         # or a list of per-interval rates, repeated if the run is longer:
    # arrivals_per_hour: [120, 200, 260, 180]
    # interval_minutes: 30
    handle_time: {distribution: exponential, mean_seconds: 180}        # or lognormal with cv, constant
    patience: {distribution: exponential, mean_seconds: 180}           # default: none (nobody hangs up)
    agents: 13                     # or a list: [{id: a, skills: {billing: 5}, queues: [billing], count: 4}]
    queues:                        # as in the engine's config (engine.acdconf.QueueConfig)
      - {name: main, wrapup_seconds: 0}
    mix: {main: 1.0}               # share of arrivals per queue (default: all to the first queue)
    service_level_seconds: 20
    warmup_minutes: 30             # default: 5% of hours
    answer_delay_seconds: 0        # how long an agent's phone rings before they answer

``agents`` as a number N gives agents ``agent-001`` .. ``agent-N`` with no skills, logged in to
every queue that requires no skill. A list entry's ``count`` (default 1) makes that many agents
``<id>-1`` .. ``<id>-<count>`` alike; an entry without ``queues`` logs in to every queue whose skill
requirement it meets. Without ``queues`` there is one queue ``main`` with the config's defaults
(note: 10 s wrap-up); validation scenarios write ``wrapup_seconds: 0``.

``agents`` and ``arrivals_per_hour`` each take two shapes; yamlconf reads one type per field, so
the loader looks at the YAML node first and reads the file with the variant of the schema that
fits (:func:`_variant`), keeping every line number.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import yaml

from engine.config.acd import QueueConfig, check_skills
from engine.config.yamlconf import ConfigError, Mark, Problem, load_text

__all__ = ["AgentSpec", "Distribution", "Scenario", "SimAgent", "load_scenario", "load_scenario_text"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError(f"expected more than 0, got {value:g}")
    return value


def _positive_or_none(value: float | None) -> float | None:
    return value if value is None else _positive(value)


def _non_negative(value: float) -> float:
    if not value >= 0:
        raise ValueError(f"expected 0 or more, got {value:g}")
    return value


def _non_negative_or_none(value: float | None) -> float | None:
    return value if value is None else _non_negative(value)


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError(f"expected 1 or more, got {value}")
    return value


def _rates(value: tuple[float, ...]) -> tuple[float, ...]:
    if not value:
        raise ValueError("expected at least one rate")
    for r in value:
        _non_negative(r)
    return value


def _agent_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"expected an id of letters, digits, '.', '_' and '-', got {value!r}")
    return value


def _empty() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """A duration in seconds: ``exponential`` (cv 1), ``lognormal`` (mean and cv), ``constant``,
    or ``none`` (never: for patience, nobody hangs up)."""

    distribution: Literal["exponential", "lognormal", "constant", "none"]
    mean_seconds: float | None = field(default=None, metadata={"check": _positive_or_none})
    cv: float = field(default=1.0, metadata={"check": _positive})

    def __post_init__(self) -> None:
        if self.distribution != "none" and self.mean_seconds is None:
            raise ValueError(f"distribution {self.distribution!r} needs mean_seconds")
        if self.distribution == "exponential" and self.cv != 1.0:
            raise ValueError("an exponential distribution has cv 1; use lognormal for another cv")


NO_PATIENCE = Distribution(distribution="none")


@dataclass(frozen=True, kw_only=True)
class AgentSpec:
    id: str = field(metadata={"check": _agent_id})
    skills: Mapping[str, int] = field(default_factory=_empty, metadata={"check": check_skills})
    queues: tuple[str, ...] = ()  # empty: every queue whose skill requirement the agent meets
    count: int = field(default=1, metadata={"check": _at_least_one})
    at: Mark | None = None


@dataclass(frozen=True, kw_only=True)
class _File:
    """The fields every variant of the file shares (``agents``/``arrivals_per_hour`` are added)."""

    hours: float = field(metadata={"check": _positive})
    seed: int = 1
    interval_minutes: float = field(default=60.0, metadata={"check": _positive})
    handle_time: Distribution
    patience: Distribution = NO_PATIENCE
    queues: tuple[QueueConfig, ...] = ()
    mix: Mapping[str, float] | None = None
    service_level_seconds: float = field(default=20.0, metadata={"check": _positive})
    warmup_minutes: float | None = field(default=None, metadata={"check": _non_negative_or_none})
    answer_delay_seconds: float = field(default=0.0, metadata={"check": _non_negative})


def _make_variant(agents_list: bool, rates_list: bool) -> type:
    fields = [
        ("agents", "tuple[AgentSpec, ...]" if agents_list else "int",
         field(metadata={"check": (lambda v: v) if agents_list else _at_least_one})),
        ("arrivals_per_hour", "tuple[float, ...]" if rates_list else "float",
         field(metadata={"check": _rates if rates_list else _non_negative})),
    ]
    name = f"_File{'AgentList' if agents_list else 'AgentCount'}{'RateList' if rates_list else 'Rate'}"
    cls = dataclasses.make_dataclass(name, fields, bases=(_File,), frozen=True, kw_only=True,
                                     namespace={"__module__": __name__})
    return cls


_VARIANTS = {(a, r): _make_variant(a, r) for a in (False, True) for r in (False, True)}


@dataclass(frozen=True, slots=True)
class SimAgent:
    id: str
    skills: Mapping[str, int]
    queues: frozenset[str]


@dataclass(frozen=True)
class Scenario:
    """A scenario as the simulator runs it (``agents`` expanded, ``mix`` normalised)."""

    handle_time: Distribution
    agents: tuple[SimAgent, ...]
    queues: tuple[QueueConfig, ...] = (QueueConfig(name="main"),)
    hours: float = 8.0
    seed: int = 1
    rates_per_hour: tuple[float, ...] = (100.0,)
    interval_seconds: float = 3600.0
    patience: Distribution = NO_PATIENCE
    mix: tuple[tuple[str, float], ...] = ()  # (queue, share) summing to 1; empty: all to the first queue
    service_level_seconds: float = 20.0
    warmup_minutes: float | None = None      # None: 5% of hours
    answer_delay_seconds: float = 0.0
    source: str = "<scenario>"

    @property
    def warmup_seconds(self) -> float:
        if self.warmup_minutes is None:
            return 0.05 * self.hours * 3600.0
        return self.warmup_minutes * 60.0

    def check(self) -> None:
        """Rules that CLI overrides (``--hours``) can break too; raises ValueError."""
        if not self.hours > 0:
            raise ValueError(f"hours: expected more than 0, got {self.hours:g}")
        if self.warmup_seconds >= self.hours * 3600.0:
            raise ValueError(f"warmup_minutes ({self.warmup_seconds / 60:g}) must be shorter than the run "
                             f"({self.hours * 60:g} minutes)")


def uniform_agents(n: int, queues: tuple[QueueConfig, ...] = (QueueConfig(name="main"),)) -> tuple[SimAgent, ...]:
    """``n`` agents with no skills, logged in to every queue that requires none."""
    names = frozenset(q.name for q in queues if not q.skills)
    width = max(3, len(str(n)))
    return tuple(SimAgent(f"agent-{i:0{width}d}", _empty(), names) for i in range(1, n + 1))


# -- loading ---------------------------------------------------------------------------------------
def load_scenario(path: str | Path, *, seed: int | None = None, hours: float | None = None) -> Scenario:
    """Load a scenario file; ``seed``/``hours`` override the file's (the command line's options)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(Mark(str(path), 1, 1), f"cannot read the file: {exc}")]) from None
    return load_scenario_text(text, file=str(path), seed=seed, hours=hours)


def load_scenario_text(text: str, *, file: str = "<string>", seed: int | None = None,
                       hours: float | None = None) -> Scenario:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None  # load_text reports it, at its line
    raw = load_text(text, _variant(root), file=file, environ={})
    if seed is not None:
        raw = dataclasses.replace(raw, seed=seed)
    if hours is not None:
        raw = dataclasses.replace(raw, hours=_positive(hours))
    return _resolve(raw, _Marks(root, file), hours_overridden=hours is not None)


def _variant(root: yaml.Node | None) -> type:
    top = _top(root)
    agents, rates = top.get("agents"), top.get("arrivals_per_hour")
    return _VARIANTS[(isinstance(agents and agents[1], yaml.SequenceNode),
                      isinstance(rates and rates[1], yaml.SequenceNode))]


def _top(root: yaml.Node | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(root, yaml.MappingNode):
        return {}
    return {k.value: (k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)}


class _Marks:
    """Where top-level keys and ``mix`` entries were written, for checks across fields."""

    def __init__(self, root: yaml.Node | None, file: str) -> None:
        self.file = file
        self.top = _top(root)

    def _mark(self, node: yaml.Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def key(self, name: str) -> Mark:
        found = self.top.get(name)
        return self._mark(found[1]) if found else Mark(self.file, 1, 1)

    def mix_key(self, queue: str) -> Mark:
        found = self.top.get("mix")
        if found and isinstance(found[1], yaml.MappingNode):
            for k, _ in found[1].value:
                if isinstance(k, yaml.ScalarNode) and k.value == queue:
                    return self._mark(k)
        return self.key("mix")


def _resolve(raw: _File, marks: _Marks, hours_overridden: bool = False) -> Scenario:
    problems: list[Problem] = []
    queues = raw.queues or (QueueConfig(name="main"),)
    names = [q.name for q in queues]
    seen: set[str] = set()
    for q in queues:
        where = q.at or marks.key("queues")
        if q.name in seen:
            problems.append(Problem(where, f"queue {q.name!r} is defined twice"))
        seen.add(q.name)
        if q.overflow is not None and q.overflow.queue not in names:
            problems.append(Problem(where, f"queue {q.name}: overflow to unknown queue {q.overflow.queue!r}"))
        if raw.answer_delay_seconds >= q.ring_timeout_seconds:
            problems.append(Problem(marks.key("answer_delay_seconds"),
                                    f"answer_delay_seconds ({raw.answer_delay_seconds:g}) must be shorter than "
                                    f"queue {q.name}'s ring_timeout_seconds ({q.ring_timeout_seconds:g})"))

    agents: list[SimAgent] = []
    if isinstance(raw.agents, int):
        agents = list(uniform_agents(raw.agents, queues))
        if not agents[0].queues:
            problems.append(Problem(marks.key("agents"), "agents given as a number have no skills, and every "
                                    "queue requires one; list the agents with their skills"))
    else:
        ids: set[str] = set()
        for spec in raw.agents:
            where = spec.at or marks.key("agents")
            unknown = [q for q in spec.queues if q not in names]
            if unknown:
                problems.append(Problem(where, f"agent {spec.id}: unknown queue(s) {', '.join(unknown)}"
                                        f"; the queues are {', '.join(names)}"))
                continue
            login = frozenset(spec.queues) if spec.queues else frozenset(
                q.name for q in queues if all(spec.skills.get(s, 0) >= lvl for s, lvl in q.skills.items()))
            if not login:
                problems.append(Problem(where, f"agent {spec.id}: meets no queue's skill requirement; "
                                        "give it skills or name its queues"))
                continue
            for k in range(1, spec.count + 1):
                agent_id = spec.id if spec.count == 1 else f"{spec.id}-{k}"
                if agent_id in ids:
                    problems.append(Problem(where, f"agent id {agent_id!r} is used twice"))
                ids.add(agent_id)
                agents.append(SimAgent(agent_id, spec.skills, login))

    mix: tuple[tuple[str, float], ...] = ()
    if raw.mix is not None:
        for q, share in raw.mix.items():
            if q not in names:
                problems.append(Problem(marks.mix_key(q), f"mix: unknown queue {q!r}; the queues are {', '.join(names)}"))
            elif not (share >= 0 and math.isfinite(share)):
                problems.append(Problem(marks.mix_key(q), f"mix.{q}: expected a share of 0 or more, got {share:g}"))
        total = sum(raw.mix.values())
        if not problems and not total > 0:
            problems.append(Problem(marks.key("mix"), "mix: the shares add up to 0"))
        if not problems:
            mix = tuple((q, share / total) for q, share in raw.mix.items() if share > 0)

    rates = raw.arrivals_per_hour if isinstance(raw.arrivals_per_hour, tuple) else (raw.arrivals_per_hour,)
    if raw.handle_time.distribution == "none":
        problems.append(Problem(marks.key("handle_time"), "handle_time: every call has a handle time; "
                                "choose exponential, lognormal or constant"))
    scenario = Scenario(
        handle_time=raw.handle_time, agents=tuple(agents), queues=queues, hours=raw.hours, seed=raw.seed,
        rates_per_hour=rates, interval_seconds=raw.interval_minutes * 60.0, patience=raw.patience, mix=mix,
        service_level_seconds=raw.service_level_seconds, warmup_minutes=raw.warmup_minutes,
        answer_delay_seconds=raw.answer_delay_seconds, source=marks.file)
    try:
        scenario.check()
    except ValueError as exc:
        note = f" (hours {raw.hours:g} from the command line)" if hours_overridden else ""
        problems.append(Problem(marks.key("warmup_minutes"), str(exc) + note))
    if problems:
        raise ConfigError(problems)
    return scenario
