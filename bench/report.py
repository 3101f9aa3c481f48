"""A benchmark's result: metrics (name -> number), the settings used, and a markdown table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Result:
    """Metrics keyed by name, plus the context they were measured in."""

    metrics: dict[str, float] = field(default_factory=dict)
    context: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The JSON body: metric names as keys, plus 'context'."""
        return {**{k: round(v, 4) for k, v in self.metrics.items()}, "context": self.context}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def print_table(name: str, result: Result) -> None:
    """Print the metrics as a markdown table."""
    print(f"\n### {name}\n\n| metric | value |\n|---|---|")
    for key, value in result.metrics.items():
        print(f"| {key} | {value:.4g} |")
