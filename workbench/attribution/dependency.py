"""The trace-level dependency map: which earlier step drove each step.

The question a user asks first about a run is not about tokens but about steps: "which
observation did this action come from?". :func:`dependency_map` attributes every step of a trace
at segment granularity and lays the scores out with steps as rows and the parts of their prompts
as columns: the instruction, the tools, each few-shot example, the task, every earlier thought,
action and observation, and the step's own thought (which its action mostly copies). A part a
step's prompt does not contain (a later observation) is empty.

    >>> dep = dependency_map(trace, model=lm)                         # doctest: +SKIP
    >>> dep.to_dataframe()                                            # doctest: +SKIP
    >>> dep.strongest()                                               # doctest: +SKIP
    {1: 'task', 2: 'observation 1', 3: 'observation 2'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import InputError
from ..types import Trace
from .results import AttributionResult

__all__ = ["DependencyMap", "dependency_map", "OWN"]

OWN = "own thought"  # the column of each step's own thought and action, whatever its number


@dataclass
class DependencyMap:
    """Steps (rows) by prompt parts (columns); ``matrix[i][j]`` is None where step i's prompt lacks part j."""

    trace_id: str
    method: str
    target: str
    steps: list[int]
    columns: list[str]
    matrix: list[list[float | None]]
    results: list[AttributionResult] = field(default_factory=list)

    def to_dataframe(self) -> Any:
        """Rows indexed by step, one column per prompt part (NaN where the part is absent)."""
        import pandas as pd

        return pd.DataFrame([[float("nan") if v is None else v for v in row] for row in self.matrix],
                            index=pd.Index(self.steps, name="step"), columns=self.columns)

    def strongest(self, leave_out_own: bool = True) -> dict[int, str]:
        """Each step's highest-scoring part (by default not its own thought)."""
        out = {}
        for step, row in zip(self.steps, self.matrix):
            cells = [(v, c) for v, c in zip(row, self.columns) if v is not None and not (leave_out_own and c == OWN)]
            if cells:
                out[step] = max(cells)[1]
        return out


def _column(label: str) -> str:
    return OWN if label.endswith("(this step)") else label


def dependency_map(trace: Trace, method: str = "feature_ablation", target: str = "step", model: Any = None, *,
                   progress: Callable[[int, int, str], None] | None = None, cancel: Any = None,
                   check_masks: int = 0, **settings: Any) -> DependencyMap:
    """Attribute every step of ``trace`` (segment features) and align them into one map.

    ``method`` and ``settings``: as for :func:`~workbench.attribution.attribute_step` (feature
    ablation with prefix reuse is the cheap default). ``progress(done, total, "steps")`` is called
    after each step; ``cancel`` (``is_set()``) stops between and inside steps. ``check_masks``:
    faithfulness checks per step (off by default: the map is for reading, each result still can be
    checked on its own).
    """
    from .api import _model_for, attribute_step

    steps = [s for s in trace.steps if s.kind != "halt" and s.generation.token_ids]
    if not steps:
        raise InputError(f"Run {trace.id} has no generated step to map.")
    lm = _model_for(trace, model)
    results = []
    for i, step in enumerate(steps):
        results.append(attribute_step(trace, step.index, target, method, "segment", lm, check_masks=check_masks,
                                      cancel=cancel, **settings))
        if progress is not None:
            progress(i + 1, len(steps), "steps")
    columns: list[str] = []
    for r in results:  # prompt order: every step's prompt extends the one before
        for f in r.features:
            if _column(f.label) not in columns and _column(f.label) != OWN:
                columns.append(_column(f.label))
    columns.append(OWN)
    matrix = []
    for r in results:
        scores = {}
        for f, s in zip(r.features, r.scores):
            scores[_column(f.label)] = scores.get(_column(f.label), 0.0) + s
        matrix.append([scores.get(c) for c in columns])
    if all(row[-1] is None for row in matrix):  # no step had its own thought before its target
        columns.pop()
        matrix = [row[:-1] for row in matrix]
    return DependencyMap(trace.id, method, target, [s.index for s in steps], columns, matrix, results)
