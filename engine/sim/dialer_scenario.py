"""The dialer simulator's scenario file: YAML into a frozen dataclass, every error at its file and line.

::

    agents: 10
    hours: 8
    seed: 1
    live_answer: 0.25            # share of dials answered by a person
    machine_answer: 0.15         # ... by an answering machine
    no_answer: 0.45              # ... ringing out at the timeout
    busy: 0.15                   # ... busy or SIT tone          (the four add up to 1)
    answer_delay: {distribution: lognormal, median_seconds: 8, sigma: 0.5}   # or constant
    no_answer_timeout_seconds: 20          # 15 at least (the law's minimum ring)
    busy_seconds: 3.5
    talk: {distribution: lognormal, mean_seconds: 120, cv: 1.0}   # or exponential, constant
    wrapup_seconds: 20
    machine_handling_seconds: 10           # with AMD off: an agent's time lost on a machine
    abandon_target_percent: 3.0
    connect_grace_seconds: 2
    amd: {enabled: false, delay_seconds: 3, false_positive: 0.05, false_negative: 0.10}
    #   or  delay: {distribution: lognormal, median_seconds: 2.5, sigma: 0.3}
    warmup_minutes: 0                      # minutes not counted in the figures (default: none)
    decision_interval_seconds: 1           # how often the shell asks the pacer, besides on events
    inbound:                               # blending (optional): inbound callers for the same agents
      calls_per_hour: 60
      handle: {distribution: exponential, mean_seconds: 180}
      patience: {distribution: exponential, mean_seconds: 90}   # or none
      answer_delay_seconds: 3
      wrapup_seconds: 10
      service_level_seconds: 20
      service_level_percent: 80

The answer delay is drawn below the no-answer timeout (a person who would answer later is among
the ``no_answer`` share already), so the four shares are the shares of dials exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from engine.config.yamlconf import ConfigError, Mark, Problem, load_text
from engine.sim.scenario import Distribution, _non_negative, _positive

__all__ = ["Amd", "Delay", "DialerScenario", "Inbound", "load_dialer_scenario", "load_dialer_scenario_text"]


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a probability from 0 to 1, got {value:g}")
    return value


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError(f"expected 1 or more, got {value}")
    return value


def _ring_minimum(value: float) -> float:
    if not value >= 15:
        raise ValueError(f"expected 15 or more (an unanswered call rings at least 15 s), got {value:g}")
    return value


def _percent(value: float) -> float:
    if not 0 < value < 100:
        raise ValueError(f"expected a percentage above 0 and below 100, got {value:g}")
    return value


@dataclass(frozen=True, kw_only=True)
class Delay:
    """A delay in seconds: ``lognormal`` (median and sigma of its log) or ``constant`` (the median)."""

    distribution: Literal["lognormal", "constant"]
    median_seconds: float = field(metadata={"check": _positive})
    sigma: float = field(default=0.5, metadata={"check": _non_negative})


@dataclass(frozen=True, kw_only=True)
class Amd:
    enabled: bool = False
    delay_seconds: float = field(default=3.0, metadata={"check": _non_negative})
    delay: Delay | None = None  # a distribution instead of the constant delay_seconds
    false_positive: float = field(default=0.0, metadata={"check": _probability})  # person judged machine
    false_negative: float = field(default=0.0, metadata={"check": _probability})  # machine judged person


@dataclass(frozen=True, kw_only=True)
class Inbound:
    """Blending: inbound callers the same agents also take (inbound first, the dialer paces on
    the agents inbound does not need)."""

    calls_per_hour: float = field(metadata={"check": _positive})
    handle: Distribution
    patience: Distribution = Distribution(distribution="none")
    answer_delay_seconds: float = field(default=3.0, metadata={"check": _non_negative})
    wrapup_seconds: float = field(default=10.0, metadata={"check": _non_negative})
    service_level_seconds: float = field(default=20.0, metadata={"check": _positive})
    service_level_percent: float = field(default=80.0, metadata={"check": _percent})


@dataclass(frozen=True, kw_only=True)
class DialerScenario:
    agents: int = field(metadata={"check": _at_least_one})
    hours: float = field(metadata={"check": _positive})
    seed: int = 1
    live_answer: float = field(metadata={"check": _probability})
    machine_answer: float = field(metadata={"check": _probability})
    no_answer: float = field(metadata={"check": _probability})
    busy: float = field(metadata={"check": _probability})
    answer_delay: Delay = Delay(distribution="lognormal", median_seconds=8.0, sigma=0.5)
    no_answer_timeout_seconds: float = field(default=20.0, metadata={"check": _ring_minimum})
    busy_seconds: float = field(default=3.5, metadata={"check": _positive})
    talk: Distribution
    wrapup_seconds: float = field(default=20.0, metadata={"check": _non_negative})
    machine_handling_seconds: float = field(default=10.0, metadata={"check": _positive})
    abandon_target_percent: float = field(default=3.0, metadata={"check": _percent})
    connect_grace_seconds: float = field(default=2.0, metadata={"check": _non_negative})
    amd: Amd = Amd()
    warmup_minutes: float = field(default=0.0, metadata={"check": _non_negative})
    decision_interval_seconds: float = field(default=1.0, metadata={"check": _positive})
    inbound: Inbound | None = None
    source: str = field(default="<scenario>", metadata={"internal": True})

    @property
    def warmup_seconds(self) -> float:
        return self.warmup_minutes * 60.0

    def problems(self) -> list[tuple[str, str]]:
        """Rules across fields, as (key, message); also run after command-line overrides."""
        out: list[tuple[str, str]] = []
        total = self.live_answer + self.machine_answer + self.no_answer + self.busy
        if abs(total - 1.0) > 1e-6:
            out.append(("live_answer", f"live_answer + machine_answer + no_answer + busy must add up to 1, "
                                       f"got {total:.6g}"))
        if self.answer_delay.median_seconds >= self.no_answer_timeout_seconds:
            out.append(("answer_delay", f"answer_delay: the median ({self.answer_delay.median_seconds:g} s) "
                                        f"must be under no_answer_timeout_seconds "
                                        f"({self.no_answer_timeout_seconds:g})"))
        if self.talk.distribution == "none":
            out.append(("talk", "talk: every call has a talk time; choose lognormal, exponential or constant"))
        if not self.hours > 0:
            out.append(("hours", f"hours: expected more than 0, got {self.hours:g}"))
        elif self.warmup_seconds >= self.hours * 3600.0:
            out.append(("warmup_minutes", f"warmup_minutes ({self.warmup_minutes:g}) must be shorter than the run "
                                          f"({self.hours * 60:g} minutes)"))
        return out

    def check(self) -> None:
        found = self.problems()
        if found:
            raise ValueError("; ".join(message for _, message in found))


def load_dialer_scenario(path: str | Path, *, seed: int | None = None, hours: float | None = None) -> DialerScenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(Mark(str(path), 1, 1), f"cannot read the file: {exc}")]) from None
    return load_dialer_scenario_text(text, file=str(path), seed=seed, hours=hours)


def load_dialer_scenario_text(text: str, *, file: str = "<string>", seed: int | None = None,
                              hours: float | None = None) -> DialerScenario:
    raw = load_text(text, DialerScenario, file=file, environ={})
    changes: dict[str, object] = {"source": file}
    if seed is not None:
        changes["seed"] = seed
    if hours is not None:
        changes["hours"] = _positive(hours)
    scenario = dataclasses.replace(raw, **changes)
    found = scenario.problems()
    if found:
        top = _top(yaml.compose(text, Loader=yaml.SafeLoader))
        problems = []
        for key, message in found:
            node = top.get(key)
            mark = Mark(file, node.start_mark.line + 1, node.start_mark.column + 1) if node else Mark(file, 1, 1)
            if key in ("hours", "warmup_minutes") and hours is not None:
                message += f" (hours {hours:g} from the command line)"
            problems.append(Problem(mark, message))
        raise ConfigError(problems)
    return scenario


def _top(root: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(root, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}

