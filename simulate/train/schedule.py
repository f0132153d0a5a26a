"""Which steps of a discrete run are recorded in its result.

The training risk (and any other tracked metric) is written at the steps the schedule marks due, and always at
step 0 and at the step where the member stopped, so every record starts at the initialization and ends at the
stopping point. With ``states=True`` the parameters are saved at the same steps (memory: one copy of the
ensemble per saved step).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from fls.theory.validation import ParameterError, check_int


@dataclass(frozen=True)
class SaveSchedule:
    """Record every ``period`` steps, or ``per_decade`` log-spaced steps per decade, or at the listed ``steps``.

    Build it with :meth:`every`, :meth:`log_spaced` or :meth:`at`.
    """

    period: int | None = 1
    per_decade: int | None = None
    steps: frozenset[int] | None = None
    states: bool = False

    def __post_init__(self) -> None:
        chosen = [name for name in ("period", "per_decade", "steps") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ParameterError(f"SaveSchedule needs exactly one of period, per_decade, steps; got {chosen}")

    @classmethod
    def every(cls, period: int = 1, *, states: bool = False) -> SaveSchedule:
        """Record steps 0, period, 2 period, ..."""
        return cls(period=check_int("period", period), states=states)

    @classmethod
    def log_spaced(cls, per_decade: int = 10, *, states: bool = False) -> SaveSchedule:
        """Record step 0 and the steps round(10^(j / per_decade)), j = 0, 1, ... (about per_decade per decade)."""
        return cls(period=None, per_decade=check_int("per_decade", per_decade), states=states)

    @classmethod
    def at(cls, steps: Iterable[int], *, states: bool = False) -> SaveSchedule:
        """Record exactly the listed steps (plus step 0 and the stopping step)."""
        listed = frozenset(check_int("steps", int(k), minimum=0) for k in steps)
        return cls(period=None, steps=listed, states=states)

    def due(self, step: int) -> bool:
        """Whether ``step`` is recorded (step 0 always is; the stopping step is added by the engine)."""
        if step == 0:
            return True
        if self.period is not None:
            return step % self.period == 0
        if self.steps is not None:
            return step in self.steps
        # due when some grid point 10^(j / per_decade), j >= 0, rounds to this step, i.e. lies in
        # [step - 1/2, step + 1/2]; one candidate on each side covers the float rounding of the logarithms
        low = max(0, math.ceil(self.per_decade * math.log10(step - 0.5)) - 1)
        high = math.floor(self.per_decade * math.log10(step + 0.5)) + 1
        return any(round(10.0 ** (j / self.per_decade)) == step for j in range(low, high + 1))
