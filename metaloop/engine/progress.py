"""A progress bar with ETA, the current meta-train loss and the last meta-val score.

tqdm (the ``[progress]`` extra) draws it on a terminal; it stays silent when stderr is not a terminal
or ``CI`` is set, so logs of batch jobs are not flooded with carriage returns.
"""

from __future__ import annotations

import os
import sys


def progress_enabled(quiet: bool = False) -> bool:
    if quiet or os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    return sys.stderr.isatty()


class Progress:
    """``update(n, loss=..., val=...)``; a no-op object when disabled or tqdm is missing."""

    def __init__(self, total: int, initial: int = 0, desc: str = "meta-train", enabled: bool = True):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="it", dynamic_ncols=True,
                            file=sys.stderr)
        self.postfix: dict[str, str] = {}

    def update(self, n: int = 1, **values: float | str | None) -> None:
        if self.bar is None:
            return
        for key, value in values.items():
            if value is not None:
                self.postfix[key] = f"{value:.4g}" if isinstance(value, float) else str(value)
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
