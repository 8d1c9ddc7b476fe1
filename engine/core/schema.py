"""What a configuration value is checked against, and where it was written: plain data that the
core's types carry in their field metadata (the YAML loader, engine/config/yamlconf.py, enforces it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Mark", "Range", "shown"]


@dataclass(frozen=True, slots=True)
class Mark:
    """Where something was written: file and 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error quotes what it refuses without quoting a megabyte."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True, slots=True)
class Range:
    """Field metadata ``{"range": Range(...)}``: the number lies from ``low`` (or, with
    ``above``, strictly above it) to ``high``."""

    low: float
    high: float
    unit: str = ""
    above: bool = False

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.above:
            return f"above {_num(self.low)} and at most {_num(self.high)}{unit}"
        return f"{_num(self.low)} to {_num(self.high)}{unit}"

    @classmethod
    def seconds(cls, high: float) -> Range:
        """A time to wait: above 0 and at most ``high`` seconds."""
        return cls(0, high, "seconds", above=True)

    def check(self, value: float) -> None:
        if (value > self.low if self.above else value >= self.low) and value <= self.high:
            return
        raise ValueError(f"expected {self}, got {_num(value)}")


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e16:
        x = int(x)
    return f"{x:g}" if isinstance(x, float) else shown(x)
