"""`make faults`: crash and fault the runtime's processes, then count what was lost.

    python -m tests.faults.run [--kills N] [--terminations N] [--backends sqlite,postgres]
                               [--scenarios writers,readers,projections,sagas] [--seed N]

Run from the repository root. Each scenario (see scenarios.py) runs with N kill -9 on each
backend (default 50, or ESGEN_FAULTS_KILLS: 200 per backend over the four scenarios) and,
on PostgreSQL, again with server-side terminations (default 15, ESGEN_FAULTS_TERMINATIONS).
Prints the counts per scenario, backend and fault, and the wall time; exits 1 if anything
was lost, duplicated or skipped, a saga command was not sent exactly once, a worker crashed,
or fewer faults than asked for were injected. PostgreSQL is the server of
ESGEN_TEST_POSTGRES_DSN (default: 127.0.0.1:5432 as postgres); without one it is left out,
unless ESGEN_REQUIRE_POSTGRES=1 or CI is set. Journals and workers' stderr stay in a
temporary folder, printed when something failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.runtime.postgres_env import drop_schema, new_schema, required

from .harness import Backend, Fault
from .scenarios import SCENARIOS, Tally, run_scenario


def postgres_dsn() -> str | None:
    """The test server's DSN, None if it cannot be reached (reason on stderr)."""
    from tests.runtime import postgres_env

    dsn, error = postgres_env._probe()
    if error is not None:
        print(f"faults: PostgreSQL left out: {error}", file=sys.stderr)
        return None
    return dsn


def run(
    backends: list[str],
    scenarios: list[str],
    kills: int,
    terminations: int,
    seed: int,
    work: Path,
    dsn: str | None,
    report: bool = True,
) -> list[Tally]:
    tallies = []
    plan: list[tuple[str, Fault, int]] = [(name, "kill", kills) for name in scenarios]
    for kind in backends:
        faults = plan + [(n, "terminate", terminations) for n in scenarios if terminations]
        for n, (name, fault, count) in enumerate(faults if kind == "postgres" else plan):
            run_dir = work / f"{kind}-{name}-{fault}"
            if kind == "sqlite":
                backend = Backend("sqlite", str(run_dir / "events.sqlite"))
            else:
                assert dsn is not None
                backend = Backend("postgres", new_schema(), dsn, drop_schema)
            tally = run_scenario(name, backend, fault, count, seed + n, run_dir)
            if report:
                print(_line(tally), flush=True)
            tallies.append(tally)
    return tallies


HEADER = (
    f"{'scenario':<12}{'backend':<10}{'fault':<10}{'kills':>6}{'events':>8}{'lost':>6}"
    f"{'dup':>5}{'skip':>6}{'cmds sent/exp':>15}{'comp sent/exp':>15}{'secs':>7}  ok"
)


def _line(t: Tally) -> str:
    def pair(p: tuple[int, int] | None) -> str:
        return "-" if p is None else f"{p[0]}/{p[1]}"

    return (
        f"{t.scenario:<12}{t.backend:<10}{t.fault:<10}{t.kills:>6}{t.events:>8}{t.lost:>6}"
        f"{t.duplicated:>5}{t.skipped:>6}{pair(t.sent):>15}{pair(t.compensations):>15}"
        f"{t.seconds:>7.1f}  {'ok' if t.ok else 'FAIL'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make faults", description=__doc__.split("\n")[0])
    env = os.environ.get
    parser.add_argument("--kills", type=int, default=int(env("ESGEN_FAULTS_KILLS", "50")))
    parser.add_argument(
        "--terminations", type=int, default=int(env("ESGEN_FAULTS_TERMINATIONS", "15"))
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=int(env("ESGEN_FAULTS_SEED", "1")))
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    dsn = None
    if "postgres" in backends:
        dsn = postgres_dsn()
        if dsn is None:
            if required():
                return 1
            backends.remove("postgres")
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="esgen-faults-"))
    print(HEADER, flush=True)
    tallies = run(
        backends, args.scenarios.split(","), args.kills, args.terminations, args.seed, work, dsn
    )
    for kind in backends:
        mine = [t for t in tallies if t.backend == kind]
        print(
            f"{kind}: {sum(t.kills for t in mine)} faults ({sum(t.kills for t in mine if t.fault == 'kill')} "
            f"kill -9), {sum(t.lost for t in mine)} lost, {sum(t.duplicated for t in mine)} "
            f"duplicated, {sum(t.skipped for t in mine)} skipped"
        )
    failed = [t for t in tallies if not t.ok]
    for tally in failed:
        print(f"\nFAIL {tally.scenario} on {tally.backend} ({tally.fault}):", file=sys.stderr)
        if tally.kills < tally.wanted:
            print(f"  only {tally.kills} of {tally.wanted} faults injected", file=sys.stderr)
        for problem in tally.problems[:10]:
            print(f"  {problem}", file=sys.stderr)
    if failed:
        print(f"journals and workers' stderr: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work)
    print(f"wall time: {time.monotonic() - began:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
