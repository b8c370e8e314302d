"""The monitor without the runner: watch a block of code in the current process (the benchmark uses it; an
API user can too)::

    with watching(project_root=".") as w:
        train_step()
    w.monitor.flush(); w.monitor.all_events()
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Watch:
    monitor: object
    health: object


@contextmanager
def watching(project_root: str, flagged: set | None = None, deferred: bool = False, health: bool = True):
    from nanlint.trace.evidence import HealthWatch
    from nanlint.trace.locate import Locator
    from nanlint.trace.modes import StampMode, WatchMode
    from nanlint.trace.monitor import Monitor

    monitor = Monitor(Locator(project_root), flagged or set(), deferred=deferred)
    watch = HealthWatch(monitor) if health else None
    if watch is not None:
        watch.install()
    try:
        with StampMode(monitor), WatchMode(monitor):
            yield Watch(monitor, watch)
        monitor.flush()
    finally:
        if watch is not None:
            watch.remove()
