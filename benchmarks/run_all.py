"""Run every benchmark in this folder, one after the other, and keep what they printed in the
README's performance section (`make bench`).

    .venv/bin/python benchmarks/run_all.py [--readme README.md] [--only NAME ...]

Each benchmark prints esgen beside its floor (and its targets) measured in the same run; the
section holds each one's output as printed, under the machine it ran on (cores, processor,
Python, commit), so a figure in the README is always one `make bench` printed. With --only,
the section keeps the other benchmarks' earlier output.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
START = "<!-- make bench: start -->"
END = "<!-- make bench: end -->"


def benchmarks() -> list[Path]:
    return [
        script
        for script in sorted(HERE.glob("*.py"))
        if script.name != "run_all.py" and not script.name.startswith("_")
    ]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; commit {commit or 'unknown'}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )


def block(script: Path, header: str, output: str) -> str:
    text = "\n".join(line.rstrip() for line in output.strip().splitlines())
    return f"`{script.name}`:\n\n```\n# {header}\n{text}\n```\n"


_BLOCK = re.compile(r"^`([\w.]+\.py)`:\n\n```\n.*?\n```\n", flags=re.M | re.S)


def section(blocks: dict[str, str]) -> str:
    body = "\n".join(blocks[name] for name in sorted(blocks))
    return (
        f"{START}\nAs `make bench` printed them; each names the machine and commit it ran "
        f"on.\n\n{body}{END}"
    )


def earlier_blocks(readme_text: str) -> dict[str, str]:
    """The benchmark outputs the README's section holds now, by script name."""
    if START not in readme_text:
        return {}
    inner = readme_text.split(START, 1)[1].split(END, 1)[0]
    return {match.group(1): match.group(0) for match in _BLOCK.finditer(inner)}


def replace_section(readme_text: str, new_section: str) -> str:
    """The README with its performance section replaced; an error if the markers are gone,
    rather than a section appended somewhere nobody reads."""
    if readme_text.count(START) != 1 or readme_text.count(END) != 1:
        raise SystemExit(f"the README must hold {START} and {END} once each")
    before, rest = readme_text.split(START, 1)
    after = rest.split(END, 1)[1]
    return before + new_section + after


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--readme", type=Path, help="rewrite this README's performance section")
    parser.add_argument("--only", nargs="*", default=[], help="benchmark file names to run")
    args = parser.parse_args()
    scripts = [s for s in benchmarks() if not args.only or s.name in args.only]
    missing = set(args.only) - {s.name for s in scripts}
    if missing:
        raise SystemExit(f"no such benchmark: {', '.join(sorted(missing))}")
    header = machine()
    print(f"== {header}", flush=True)
    blocks = earlier_blocks(args.readme.read_text()) if args.readme else {}
    for script in scripts:
        print(f"== {script.name}", flush=True)
        result = subprocess.run(
            [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, check=False
        )
        print(result.stdout, end="", flush=True)
        if result.returncode != 0:
            raise SystemExit(f"{script.name} failed (exit {result.returncode})")
        blocks[script.name] = block(script, header, result.stdout)
    if args.readme:
        text = args.readme.read_text()
        args.readme.write_text(replace_section(text, section(blocks)))
        print(f"== {args.readme}: performance section rewritten", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
