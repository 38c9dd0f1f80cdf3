"""Step through a run by hand: the agent pauses after writing each action, before the tool runs, and again
after the tool, before the model reads the observation. At each pause a person may replace the action (or
the observation) and go on one step or to the end; Stop works at any moment.

Useful in class: the teacher asks the room what the model will do next, then presses Step.

    >>> from workbench.testing import ScriptedModel
    >>> lm = ScriptedModel([" add.\\nAction: calculate[2 + 3]", " done.\\nAction: finish[5]"])
    >>> run = StepByStep(Agent(lm), "What is 2 + 3?")
    >>> _ = run.step(); run.paused, str(run.pending.action)        # the action is written; calculate has not run
    ('action', 'calculate[2 + 3]')
    >>> _ = run.step(action="calculate[2 + 4]"); run.paused, run.pending.observation   # the edited action ran
    ('observation', '6')
    >>> run.run_to_end().answer
    '5'
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Literal

from .agent import Agent, validate_task  # noqa: F401  (Agent: the doctest's)
from .types import Step, Trace

__all__ = ["StepByStep", "Pause"]

Pause = Literal["", "action", "observation"]  # where the run waits ("" while it works or once it ended)


class StepByStep:
    """A run a person steps through. ``step()`` goes on to the next pause and returns :meth:`view`;
    ``run_to_end()`` stops pausing; ``stop()`` cancels. The agent runs in a thread of its own, which
    waits at each pause; every method returns once the run has reached the next pause or its end."""

    def __init__(self, agent: Agent, task: str, cancel: threading.Event | None = None, **meta: Any) -> None:
        self.agent, self.task, self.meta = agent, validate_task(task), meta
        self.cancel = cancel or threading.Event()
        self.trace: Trace | None = None  # the growing trace (None until the first step completes)
        self.pending: Step | None = None  # the step waiting at a pause (not yet in the trace)
        self.paused: Pause = ""
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._turn: Literal["agent", "person"] = "agent"
        self._edit: str | None = None
        self._auto = False
        self._thread: threading.Thread | None = None
        self._done = False

    # ---------------------------------------------------------------- the person's side
    @property
    def done(self) -> bool:
        return self._done

    def step(self, action: str | None = None, observation: str | None = None, timeout: float | None = None) -> Trace:
        """Go on to the next pause (the first call starts the run). At an action pause, ``action`` replaces the
        model's action; at an observation pause, ``observation`` replaces the tool's."""
        edit = action if self.paused == "action" else observation if self.paused == "observation" else None
        self._go(edit, timeout)
        return self.view()

    def run_to_end(self, timeout: float | None = None) -> Trace:
        """Stop pausing and run to the end (the edit of the current pause is not taken)."""
        self._auto = True
        self._go(None, timeout)
        return self.view()

    def stop(self, timeout: float | None = 30.0) -> Trace:
        """Cancel the run wherever it is; the trace ends as ``cancelled``."""
        self.cancel.set()
        with self._cond:
            self._turn = "agent"
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.view()

    def view(self) -> Trace:
        """A copy of the trace so far with the pending step (if any) as its last step."""
        trace = copy.copy(self.trace) if self.trace is not None else Trace(task=self.task, mode=self.agent.config.mode,
                                                                             model=self.agent.model_name)
        trace.steps = list(trace.steps) + ([self.pending] if self.pending is not None and self.paused else [])
        return trace

    def _go(self, edit: str | None, timeout: float | None) -> None:
        if self._done:
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="step-by-step", daemon=True)
                self._thread.start()
            else:
                self._edit, self._turn = edit, "agent"
                self._cond.notify_all()
            self._cond.wait_for(lambda: self._turn == "person" or self._done, timeout)
        if self.error is not None:
            raise self.error

    # ---------------------------------------------------------------- the agent's side (a Gate)
    def _run(self) -> None:
        try:
            for trace in self.agent.stream(self.task, cancel=self.cancel, gate=self, **self.meta):
                self.trace = trace
        except BaseException as err:  # noqa: BLE001  # handed to the caller of step()
            self.error = err
        finally:
            with self._cond:
                self._done, self.paused, self.pending = True, "", None
                self._cond.notify_all()

    def _pause(self, where: Pause, step: Step) -> str | None:
        if self._auto or self.cancel.is_set():
            return None
        with self._cond:
            self.pending, self.paused, self._turn = step, where, "person"
            self._cond.notify_all()
            while self._turn == "person" and not self.cancel.is_set():
                self._cond.wait(0.1)
            edit, self._edit, self.paused = self._edit, None, ""
        return edit

    def action(self, step: Step) -> str | None:
        return self._pause("action", step)

    def observation(self, step: Step) -> str | None:
        return self._pause("observation", step)
