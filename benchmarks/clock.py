"""The timer every benchmark uses: CPU seconds (this process, all threads) and wall seconds of a block."""

from __future__ import annotations

import time


class Clock:
    def __enter__(self) -> "Clock":
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu0, time.perf_counter() - self.wall0
