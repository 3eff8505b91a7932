"""Format generated Python with the configured formatter (black by default).

Outside `esgen.codegen` so that reading the configuration stays cheap to import.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from esgen._errors import EsgenError

__all__ = ["FORMATTERS", "Formatter", "FormatterName"]

FormatterName = Literal["black", "ruff", "none"]
FORMATTERS: tuple[FormatterName, ...] = ("black", "ruff", "none")

# Below this many files, starting worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 24


@dataclass(frozen=True)
class Formatter:
    name: FormatterName = "black"
    line_length: int = 88

    @property
    def id(self) -> str:
        """Part of every file's input key: changing formatter settings reformats."""
        return f"{self.name}:{self.line_length}"

    def format(
        self,
        sources: Mapping[Path, str],
        preformatted: Collection[Path] = (),
    ) -> dict[Path, str]:
        """Format every file; `preformatted` ones only where a line is too long.

        Black is slow (seconds for a thousand events); text that esgen's templates
        already laid out in black's style is left alone unless a line overflows.
        """
        for path, text in sources.items():
            _check_syntax(path, text)
        if not sources or self.name == "none":
            return dict(sources)
        if self.name == "ruff":
            return _ruff(sources, self.line_length)
        result = {
            path: text
            for path, text in sources.items()
            if path in preformatted and _fits(text, self.line_length)
        }
        rest = {path: text for path, text in sources.items() if path not in result}
        return {**result, **self._black_all(rest)}

    def _black_all(self, sources: Mapping[Path, str]) -> dict[Path, str]:
        items = sorted(sources.items())
        if len(items) < _PARALLEL_THRESHOLD or (os.cpu_count() or 1) < 2:
            return {path: _format_with_black(path, text, self.line_length) for path, text in items}
        workers = min(os.cpu_count() or 2, 4)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(
                _format_with_black,
                [p for p, _ in items],
                [t for _, t in items],
                [self.line_length] * len(items),
                chunksize=max(1, len(items) // (workers * 4)),
            )
            return dict(zip([p for p, _ in items], results, strict=True))


def _check_syntax(path: Path, text: str) -> None:
    """Refuse to write what is not Python: a template bug must not reach users' trees."""
    try:
        compile(text, str(path), "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
    except SyntaxError as exc:
        raise EsgenError(
            f"esgen produced invalid Python for {path} (line {exc.lineno}: {exc.msg}); "
            "this is a bug in esgen, please report it"
        ) from exc


def _fits(text: str, line_length: int) -> bool:
    # Black counts wide (East Asian) characters as two columns; counting every
    # non-ASCII character as two errs on the side of formatting. Black never splits a
    # line that is only a comment, so those may be long.
    return all(
        len(line) + sum(1 for ch in line if ord(ch) > 127) <= line_length
        or line.lstrip().startswith("#")
        for line in text.split("\n")
    )


def _format_with_black(path: Path, text: str, line_length: int) -> str:
    # Slow to import; only paid when something needs formatting.
    import black
    from black.mode import TargetVersion
    from black.parsing import InvalidInput

    mode = black.Mode(line_length=line_length, target_versions={TargetVersion.PY311})
    try:
        return black.format_str(text, mode=mode)
    except InvalidInput as exc:  # a bug in esgen's templates, not in the schema
        raise EsgenError(f"esgen produced invalid Python for {path}: {exc}") from exc


def _ruff(sources: Mapping[Path, str], line_length: int) -> dict[Path, str]:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        raise EsgenError("formatter 'ruff' is configured, but ruff is not installed")
    with tempfile.TemporaryDirectory(prefix="esgen-format-") as tmp:
        root = Path(tmp)
        names = {path: root / f"m{index}.py" for index, path in enumerate(sources)}
        for path, text in sources.items():
            names[path].write_text(text, encoding="utf-8")
        result = subprocess.run(
            [ruff, "format", "--no-cache", "--isolated", f"--line-length={line_length}", "."],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise EsgenError(f"ruff format failed: {result.stderr.strip()}")
        return {path: names[path].read_text(encoding="utf-8") for path in sources}
