"""How many replicas a service should have, from the utilization its replicas report.

Utilization is in-flight requests against the concurrency limit, averaged over the
samples taken since the last decision. The rule is Kubernetes' horizontal pod
autoscaler's: desired = ceil(current * utilization / target), within 10 % of the target
nothing changes, and scaling down follows the highest recommendation of a short
window so one quiet moment does not remove replicas that are about to be needed.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from modelyard.domain.webservices import AutoScaler

TOLERANCE = 0.1


def recommend(current: int, utilization: float, settings: AutoScaler) -> int:
    """Replicas for `utilization` (0..1 of the concurrency limit) at `current` replicas."""
    low, high = settings.min_replicas, settings.max_replicas
    target = settings.target_utilization / 100
    if current == 0:
        return max(low, 1) if utilization > 0 else low
    if target <= 0:
        return high
    ratio = utilization / target
    if abs(ratio - 1) <= TOLERANCE:
        return min(max(current, low), high)
    return min(max(math.ceil(current * ratio), low), high)


@dataclass
class Autoscaler:
    settings: AutoScaler
    samples: list[float] = field(default_factory=list)
    last_decision: float = field(default_factory=time.monotonic)
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def stabilization_s(self) -> float:
        return 5.0 * self.settings.refresh_period_s

    def observe(self, utilization: float) -> None:
        self.samples.append(utilization)

    def decide(self, current: int, now: float | None = None) -> int | None:
        """The new replica count when a refresh period has passed, else None."""
        now = time.monotonic() if now is None else now
        if now - self.last_decision < self.settings.refresh_period_s or not self.samples:
            return None
        utilization = sum(self.samples) / len(self.samples)
        self.samples.clear()
        self.last_decision = now
        wanted = recommend(current, utilization, self.settings)
        self._recent.append((now, wanted))
        while self._recent and now - self._recent[0][0] > self.stabilization_s:
            self._recent.popleft()
        if wanted < current:
            wanted = min(current, max(w for _, w in self._recent))
        return wanted
