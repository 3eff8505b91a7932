"""The schema fuzzer's campaign: worker processes under a watchdog, counts, reproducers.

    python tests/fuzz/run_fuzz.py --count 20000 --seed 1 --jobs 2 --keep fuzz-failures

Each worker draws `schema_cases()` with Hypothesis from its own seed (derived from
`--seed`), runs each through `esgen generate` in-process and prints one JSON line per
case. The parent reads those lines; a worker silent for `--stall` seconds is stuck (a
hang in C code cannot be interrupted in-process), so it is killed, its case confirmed in
a fresh interpreter with a timeout, and a new worker carries on with the rest. Failures
are saved under `--keep`; with `--shrink`, Hypothesis then replays each kind of failure
from its worker's seed and shrinks it to a minimal reproducer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# One successful case in IMPORT_EVERY is also imported in a fresh interpreter (a process
# start costs more than a whole in-process run); every successful case is compiled.
IMPORT_EVERY = 10
# Failures known and accepted for a while (none today): reported, counted apart, and not
# failing `make test`. Signature pattern -> reason.
KNOWN: dict[str, str] = {}


@dataclass
class Report:
    schemas: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[Path]] = field(default_factory=dict)
    minimal: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def known(self, signature: str) -> str | None:
        return next((why for pat, why in KNOWN.items() if re.search(pat, signature)), None)

    @property
    def unexpected(self) -> list[str]:
        return sorted(s for s in self.failures if self.known(s) is None)

    def summary(self) -> str:
        lines = [
            f"schemas run: {self.schemas} in {self.seconds:.0f} s",
            f"ok (generated, compiled): {self.kinds['ok']} ({self.kinds['imported']} also imported)",
            f"located errors: {self.kinds['located']}",
            f"other errors (exit 1/2, a message without a location): {self.kinds['error']}",
            f"slow or stalled in the batch, fine alone: {self.kinds['unconfirmed-slow'] + self.kinds['stall-unconfirmed']}",
            f"failures: {self.kinds['failure']} ({len(self.failures)} kinds, {len(self.unexpected)} not known)",
        ]
        for sig, paths in sorted(self.failures.items()):
            why = self.known(sig)
            tag = f" [known: {why}]" if why else ""
            lines.append(f"  {sig}{tag}: {len(paths)} saved, e.g. {paths[0]}")
            if sig in self.minimal:
                lines.append(f"    minimal: {self.minimal[sig]}")
        return "\n".join(lines)


def slug(signature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", signature)[:80]


# --------------------------------------------------------------------------------- worker


def _save(keep: Path, signature: str, project: Path, detail: str, limit: int = 3) -> Path | None:
    folder = keep / slug(signature)
    n = len(list(folder.glob("[0-9]*"))) if folder.exists() else 0
    if n >= limit:
        return None
    target = folder / str(n)
    shutil.copytree(project / "schemas", target / "schemas")
    (target / "detail.txt").write_text(
        f"{signature}\n\n{detail}", encoding="utf-8", errors="replace"
    )
    return target


def worker(seed: int, count: int, workdir: Path, keep: Path, shrink: str | None) -> None:
    """Run `count` drawn cases, one JSON line each; with `shrink`, only replay and shrink
    the cases whose signature is `shrink`, keeping the last (smallest) under `keep`."""
    from fuzz_target import SLOW_SECONDS, Outcome, import_check, judge, prepare, run_in_subprocess
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seed_with
    from schema_fuzz import SchemaCase, schema_cases

    project = workdir / "project"
    ok_count = 0

    def say(**data: Any) -> None:
        print(json.dumps(data), flush=True)

    class Found(Exception):
        pass

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @seed_with(seed)
    @given(schema_cases())
    def one(case: SchemaCase) -> None:
        nonlocal ok_count
        prepare(project, case.files)
        say(event="start", mutations=list(case.mutations))
        outcome = judge(project)
        if outcome.signature == "slow":
            # Confirm apart from the batch, with room for a loaded machine: a case that
            # finishes there in 3x the bound is judged again, not counted as a hang.
            prepare(project, case.files)
            code, seconds = run_in_subprocess(project, timeout=120)
            if code is not None and seconds <= 3 * SLOW_SECONDS:
                prepare(project, case.files)
                outcome = judge(project)
                if outcome.signature == "slow":
                    outcome = Outcome("unconfirmed-slow", outcome.exit_code, outcome.seconds)
        if outcome.kind == "ok":
            ok_count += 1
            if ok_count % IMPORT_EVERY == 1:
                failed = import_check(project)
                outcome = failed or outcome
                say(event="imported")
        if shrink is not None:
            if outcome.signature == shrink:
                prepare(project, case.files)  # the generated output is not part of it
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(project / "schemas", keep / "schemas")
                (keep / "detail.txt").write_text(outcome.detail, encoding="utf-8", errors="replace")
                raise Found(outcome.signature)
            return
        saved = None
        if outcome.kind == "failure":
            prepare(project, case.files)
            saved = _save(keep, outcome.signature, project, f"{case.mutations}\n{outcome.detail}")
        say(event="done", kind=outcome.kind, signature=outcome.signature, saved=str(saved or ""))

    with contextlib.suppress(Found):
        one()


# --------------------------------------------------------------------------------- parent


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    workdir: Path
    seed: int
    count: int
    done: int = 0
    last: float = field(default_factory=time.monotonic)
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)


def _spawn(seed: int, count: int, workdir: Path, keep: Path, shrink: str | None = None) -> _Worker:
    workdir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, str(HERE / "run_fuzz.py"), "--worker", "--seed", str(seed)]
    args += ["--count", str(count), "--workdir", str(workdir), "--keep", str(keep)]
    if shrink:
        args += ["--shrink-signature", shrink]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    w = _Worker(proc, workdir, seed, count)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            w.lines.put(line)
        w.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return w


def _kill(w: _Worker) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(w.proc.pid, 9)
    w.proc.wait()


def campaign(
    count: int, seed: int, jobs: int, keep: Path, stall: float = 90.0, shrink: bool = False
) -> Report:
    """Run `count` cases over `jobs` workers; the report's failures name saved cases."""
    from fuzz_target import run_in_subprocess

    report = Report()
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="esgen-fuzz-"))
    seeds: dict[str, tuple[int, int]] = {}  # signature -> (worker seed, count), to shrink
    share = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
    active = [_spawn(seed * 1000 + i, n, scratch / f"w{i}", keep) for i, n in enumerate(share) if n]
    restarts = 0
    while active:
        for w in list(active):
            try:
                line = w.lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            if line:
                w.last = time.monotonic()
                data = json.loads(line)
                if data["event"] == "imported":
                    report.kinds["imported"] += 1
                if data["event"] != "done":
                    continue
                w.done += 1
                report.schemas += 1
                report.kinds[data["kind"]] += 1
                if report.schemas % 1000 == 0:
                    print(
                        f"fuzz: {report.schemas}/{count} run, {report.kinds['failure']} failed",
                        file=sys.stderr,
                        flush=True,
                    )
                if data["kind"] == "failure":
                    paths = report.failures.setdefault(data["signature"], [])
                    if data["saved"]:
                        paths.append(Path(data["saved"]))
                    # The worker's own max_examples: Hypothesis draws differently under another.
                    seeds.setdefault(data["signature"], (w.seed, w.count))
                continue
            stuck = time.monotonic() - w.last > stall
            if line is None or stuck:
                if stuck:
                    _kill(w)
                code = w.proc.wait()
                active.remove(w)
                left = w.count - w.done
                if line is None and code == 0:
                    if left > 0 and restarts < 50:  # Hypothesis stopped early: top up
                        restarts += 1
                        nxt = scratch / f"r{restarts}"
                        active.append(_spawn(seed * 1000 + 100 + restarts, left, nxt, keep))
                    continue
                # Stuck or died on the case it was running: confirm apart, then carry on.
                case = w.workdir / "project"
                shutil.rmtree(case / "src", ignore_errors=True)
                shutil.rmtree(case / "tests", ignore_errors=True)
                exit_code, seconds = run_in_subprocess(case, timeout=stall)
                signature = "hang" if exit_code is None or seconds > 10 else f"worker-died:{code}"
                if stuck and exit_code is not None and seconds <= 10:
                    signature = "stall-unconfirmed"  # a busy machine, not the case
                report.schemas += 1
                report.kinds["failure" if signature != "stall-unconfirmed" else signature] += 1
                if signature != "stall-unconfirmed":
                    saved = _save(keep, signature, case, f"exit {exit_code} after {seconds:.0f} s")
                    report.failures.setdefault(signature, []).extend([saved] if saved else [])
                if left > 1:
                    restarts += 1
                    nxt = scratch / f"r{restarts}"
                    active.append(_spawn(seed * 1000 + 100 + restarts, left - 1, nxt, keep))
    report.seconds = time.monotonic() - start
    if shrink:
        for sig, (wseed, n) in sorted(seeds.items()):
            if sig in ("slow", "hang") or sig.startswith("worker-died"):
                continue
            target = keep / slug(sig) / "minimal"
            w = _spawn(wseed, n, scratch / f"shrink-{slug(sig)}", target, shrink=sig)
            try:
                w.proc.wait(timeout=900)
            except subprocess.TimeoutExpired:
                _kill(w)
            if (target / "schemas").is_dir():
                report.minimal[sig] = target
    shutil.rmtree(scratch, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=int(os.environ.get("FUZZ_COUNT", "20000")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")))
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "2")))
    parser.add_argument(
        "--keep", type=Path, default=Path(os.environ.get("FUZZ_KEEP", "fuzz-failures"))
    )
    parser.add_argument(
        "--stall", type=float, default=90.0, help="seconds of silence that mean a hang"
    )
    parser.add_argument("--no-shrink", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--shrink-signature", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.seed, args.count, args.workdir, args.keep.resolve(), args.shrink_signature)
        return 0
    report = campaign(
        args.count, args.seed, args.jobs, args.keep.resolve(), args.stall, not args.no_shrink
    )
    print(report.summary())
    return 1 if report.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
