"""Checking many files: the cache first, then the remaining files in a process pool (or in-process when
there are few), with results in the same order as a single-process run.

Each file is read once here to hash it; a file the cache does not answer is read again by the process that
checks it, which hashes what it read, so a file edited during the run is cached under the content that
was actually analysed. The parent keeps results only, never trees.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from nanlint.config import Config
from nanlint.engine import AnalysisOptions, FileResult
from nanlint.findings import Finding, InternalError

if TYPE_CHECKING:
    from nanlint.hierarchy import Configs

#: below this many files to analyse, a process pool costs more than it saves
POOL_THRESHOLD = 20


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def options_for(config: Config, filename: str) -> AnalysisOptions:
    return config.analysis_options(filename)


@dataclass(frozen=True)
class _Job:
    index: int
    filename: str
    options: AnalysisOptions


def check_one(filename: str, options: AnalysisOptions) -> tuple[str | None, FileResult]:
    """Read, decode and analyse one file: (hash of the bytes read or None when unreadable, result)."""
    from nanlint.cache import content_hash
    from nanlint.engine import analyze
    from nanlint.source import decode, read_bytes

    data, problem = read_bytes(filename)
    if data is None:
        return None, FileResult(filename, [problem] if problem else [])
    digest = content_hash(data)
    text = decode(data, filename)
    if text.text is None:
        return digest, FileResult(filename, [text.problem] if text.problem else [])
    try:
        return digest, analyze(text.text, filename, options)
    except Exception as exc:  # analyze never raises by contract; a pool worker must not die if it does
        return None, FileResult(filename, [], [InternalError(filename, "engine", f"{type(exc).__name__}: {exc}")])


def _work(job: _Job) -> tuple[int, str | None, FileResult]:
    digest, result = check_one(job.filename, job.options)
    return job.index, digest, result


def check_files(filenames: Sequence[str], config: "Config | Configs", jobs: int | None = None, use_cache: bool | None = True,
                progress=None) -> list[FileResult]:
    """Results for ``filenames``, in that order, each checked with its own configuration (see
    :mod:`nanlint.hierarchy`). ``jobs`` None: one process per CPU; ``use_cache`` None: as each file's
    configuration says. Each configuration keeps its cache at its own root. ``progress``: a
    :class:`nanlint.progress.Progress` factory (called with the number of files), or None."""
    from nanlint.cache import Cache, content_hash
    from nanlint.hierarchy import Configs
    from nanlint.source import read_bytes

    configs = Configs.of(config)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    caches: dict[int, Cache | None] = {}
    results: list[FileResult | None] = [None] * len(filenames)
    todo: list[_Job] = []
    keys: list[tuple[Cache, str, frozenset[str]] | None] = [None] * len(filenames)
    for index, filename in enumerate(filenames):
        file_config = configs.for_path(filename)
        options = options_for(file_config, filename)
        if id(file_config) not in caches:
            wanted = file_config.cache if use_cache is None else use_cache
            caches[id(file_config)] = Cache(file_config.root, file_config.fingerprint()) if wanted else None
        cache = caches[id(file_config)]
        if cache is not None:
            key = os.path.abspath(filename)
            keys[index] = (cache, key, options.codes)
            data, _ = read_bytes(filename)
            digest = content_hash(data) if data is not None else None
            hit = cache.get(key, digest, options.codes) if digest is not None else None
            if hit is not None:
                results[index] = _with_filename(filename, hit[0], hit[1])
                continue
        todo.append(_Job(index, filename, options))
    shown = progress(len(filenames)) if progress is not None else None
    done = len(filenames) - len(todo)
    for index, digest, result in _analyse(todo, jobs):
        results[index] = result
        done += 1
        if shown is not None:
            shown.update(done)
        if keys[index] is not None and digest is not None and not _has_engine_error(result):
            cache, key, codes = keys[index]
            cache.put(key, digest, codes, result.findings, result.errors)
    if shown is not None:
        shown.close()
    for cache in caches.values():
        if cache is not None:
            cache.save()
    return [r for r in results if r is not None]


def _with_filename(filename: str, findings: list[Finding], errors: list[InternalError]) -> FileResult:
    from dataclasses import replace

    return FileResult(
        filename,
        [f if f.filename == filename else replace(f, filename=filename) for f in findings],
        [e if e.filename == filename else InternalError(filename, e.rule, e.message) for e in errors],
    )


def _has_engine_error(result: FileResult) -> bool:
    """Failures of the engine itself (recursion limits, a crashed worker) are not worth remembering."""
    return any(e.rule == "engine" for e in result.errors)


def _analyse(todo: list[_Job], jobs: int) -> Iterable[tuple[int, str | None, FileResult]]:
    if jobs == 1 or len(todo) < POOL_THRESHOLD:
        for job in todo:
            yield _work(job)
        return
    yield from _in_pool(todo, jobs)


def _in_pool(todo: list[_Job], jobs: int) -> Iterable[tuple[int, str | None, FileResult]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Load libcst and the rules once here: forked workers inherit them instead of importing each.
    from nanlint import analysis  # noqa: F401
    from nanlint.rules import all_rules

    all_rules()
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    workers = min(jobs, len(todo))
    chunksize = max(1, min(16, len(todo) // (workers * 8)))
    done: set[int] = set()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for item in pool.map(_work, todo, chunksize=chunksize):
                done.add(item[0])
                yield item
    except BrokenProcessPool:
        # a worker died (out of memory, a crash in native code) and took its chunk's results with it: finish
        # the rest one process per file, so that the file that kills its process is reported alone
        yield from _isolated([job for job in todo if job.index not in done], workers, context)


def _isolated(todo: list[_Job], jobs: int, context) -> Iterable[tuple[int, str | None, FileResult]]:
    """Each job in a forked process of its own, ``jobs`` at a time; a process that dies without an answer is
    an engine error for its file only."""
    from multiprocessing.connection import wait

    pending = list(reversed(todo))
    running: dict = {}  # reading end -> (process, job)
    while pending or running:
        while pending and len(running) < jobs:
            job = pending.pop()
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_answer, args=(job, writer), daemon=True)
            process.start()
            writer.close()
            running[reader] = (process, job)
        for reader in wait(list(running)):
            process, job = running.pop(reader)
            try:
                item = reader.recv()
            except (EOFError, OSError):
                item = None
            reader.close()
            process.join()
            yield item if item is not None else (job.index, None, _died(job.filename, process.exitcode))


def _answer(job: _Job, writer) -> None:
    writer.send(_work(job))
    writer.close()


def _died(filename: str, exitcode: int | None) -> FileResult:
    import signal

    how = f"exit code {exitcode}"
    if exitcode is not None and exitcode < 0:
        try:
            how = signal.Signals(-exitcode).name
        except ValueError:
            how = f"signal {-exitcode}"
    message = f"the process analysing this file died ({how}); the other files were checked"
    return FileResult(filename, [], [InternalError(filename, "engine", message)])


@dataclass
class RunTotals:
    findings: list[Finding]
    errors: list[InternalError]
    files: int


def run_paths(paths: Iterable[str], config: "Config | Configs", force_exclude: bool = False, jobs: int | None = None, use_cache: bool | None = None) -> RunTotals:
    """Discover the files under ``paths`` and check them; findings sorted by path, line, column, code."""
    from nanlint.discovery import discover

    filenames = list(discover(list(paths), config, force_exclude))
    findings: list[Finding] = []
    errors: list[InternalError] = []
    for result in check_files(filenames, config, jobs, use_cache):
        findings.extend(result.findings)
        errors.extend(result.errors)
    findings.sort(key=Finding.sort_key)
    return RunTotals(findings, errors, len(filenames))
