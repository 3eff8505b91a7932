"""A YAML parser error told as the mistake a person made, and how to fix it.

PyYAML (and libyaml under it, which words the same errors differently) says what its
grammar expected: "found character that cannot start any token", "did not find expected
key". The mistakes behind those are few (a tab, an unclosed quote or bracket, no space
after ':', a key indented wrongly) and each can be told from the error's marks and the
text around them, which works the same with either parser. Anything else keeps the
parser's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

__all__ = ["YamlProblem", "explain_yaml_error"]


@dataclass(frozen=True)
class YamlProblem:
    """Where to look (line and column from 1) and what went wrong there."""

    line: int
    col: int
    message: str


@dataclass(frozen=True)
class _Mark:
    line: int  # from 1
    col: int  # from 1


# Line breaks as YAML counts them, so that line numbers agree with the parser's marks.
_BREAKS = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_COMMENT_OR_BLANK = re.compile(r"^\s*(?:#.*)?$")
# `total:int`: a key and its value with no space between them.
_NO_SPACE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][\w.-]*):(\S.*)$")
# `fields` alone on a line, where `fields:` was meant.
_BARE_WORD = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][\w.-]*)\s*$")
# `key: value` or `- key: value`, with a value on the same line.
_KEY_VALUE = re.compile(r"^\s*(?:-\s+)?([^\s:#][^:#]*?):\s+(\S.*)$")
_BRACKETED_TYPE = re.compile(r"\b(?:list|dict)\[")
_CLOSER = {"[": "]", "{": "}"}
_OPENER = {"]": "[", "}": "{"}


def explain_yaml_error(exc: yaml.YAMLError, text: str) -> YamlProblem:
    """Where the parser stopped and what the user has to change, in one line."""
    lines = _BREAKS.split(text)
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _position(text, exc.position)
        char = exc.character
        code = char if isinstance(char, int) else ord(str(char)[:1] or " ")
        return YamlProblem(
            line, col, f"character U+{code:04X} is not allowed in YAML text; remove it"
        )
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return YamlProblem(1, 1, " ".join(str(exc).split()))
    problem = _Mark(exc.problem_mark.line + 1, exc.problem_mark.column + 1)
    context = None
    if exc.context_mark is not None:
        context = _Mark(exc.context_mark.line + 1, exc.context_mark.column + 1)
    return _Explainer(lines, problem, context, exc.problem or "", exc.context or "").explain()


def _position(text: str, index: int) -> tuple[int, int]:
    before = _BREAKS.split(text[:index])
    return len(before), len(before[-1]) + 1


def _quoted(value: str) -> str:
    """`value` as a YAML quoted scalar that reads back as itself."""
    if '"' not in value and "\\" not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


@dataclass(frozen=True)
class _Explainer:
    lines: list[str]
    problem: _Mark
    context: _Mark | None
    what: str  # the parser's problem ("did not find expected key")
    during: str  # the parser's context ("while parsing a block mapping")

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    def char(self, mark: _Mark) -> str:
        """The character at `mark`: "" at the end of the file, "\\n" at the end of a line."""
        if mark.line > len(self.lines):
            return ""
        text = self.line(mark.line)
        if mark.col - 1 < len(text):
            return text[mark.col - 1]
        return "" if mark.line == len(self.lines) else "\n"

    def found(self, mark: _Mark) -> str:
        char = self.char(mark)
        if char == "":
            return "the end of the file"
        return "the end of the line" if char == "\n" else repr(char)

    def previous(self, number: int) -> tuple[int, str] | None:
        """The nearest line above `number` that holds something, with its number."""
        for earlier in range(number - 1, 0, -1):
            if not _COMMENT_OR_BLANK.match(self.line(earlier)):
                return earlier, self.line(earlier)
        return None

    def at(self, message: str, mark: _Mark | None = None) -> YamlProblem:
        mark = mark or self.problem
        return YamlProblem(mark.line, mark.col, message)

    def explain(self) -> YamlProblem:
        rules: tuple[Callable[[], YamlProblem | None], ...] = (
            self.tab,
            self.reserved,
            self.quote,
            self.flow,
            self.colon,
            self.missing_colon,
            self.block,
            self.documents,
            self.alias,
        )
        for rule in rules:
            found = rule()
            if found is not None:
                return found
        during = f" ({self.during})" if self.during and self.what else ""
        return self.at(f"{self.what or self.during or 'malformed YAML'}{during}")

    # -- one rule per mistake, each None when the error is not that mistake -------------

    def tab(self) -> YamlProblem | None:
        text = self.line(self.problem.line)
        margin = text[: len(text) - len(text.lstrip(" \t"))]
        if "\t" in margin:
            where = _Mark(self.problem.line, margin.index("\t") + 1)
        elif self.char(self.problem) == "\t":
            where = self.problem
        else:
            return None
        return self.at(
            "found a tab; YAML indents with spaces, never with tabs: replace it with spaces",
            where,
        )

    def reserved(self) -> YamlProblem | None:
        char = self.char(self.problem)
        if "cannot start any token" not in self.what or char in ("", "\n"):
            return None
        text = self.line(self.problem.line)
        value = text[self.problem.col - 1 :].strip()
        key = text[: self.problem.col - 1].strip()
        example = f"{key} {_quoted(value)}" if key.endswith(":") else _quoted(value)
        return self.at(
            f"{char!r} cannot start a plain value in YAML (it is reserved); quote the value: "
            f"{example}"
        )

    def quote(self) -> YamlProblem | None:
        if "quoted scalar" not in self.during:
            return None
        if "escape" in self.what:
            mark = self.problem
            if self.char(mark) != "\\" and mark.col > 1:
                mark = _Mark(mark.line, mark.col - 1)  # PyYAML marks the letter after it
            escape = self.line(mark.line)[mark.col - 1 : mark.col + 1]
            return self.at(
                f"'{escape}' is no escape sequence YAML knows inside \"...\"; write '\\\\' "
                "for a backslash, or quote the value with '...', which has no escapes",
                mark,
            )
        if self.context is None:
            return None
        quote = self.char(self.context)
        ends = " (the file ends inside it)" if "end of stream" in self.what else ""
        return self.at(
            f"the quoted value that starts here is never closed{ends}; end the value with "
            f"a closing {quote}",
            self.context,
        )

    def flow(self) -> YamlProblem | None:
        if "flow" not in self.during or "expected ','" not in self.what:
            return None
        opener = "[" if "sequence" in self.during else "{"
        closer = _CLOSER[opener]
        text = self.line(self.problem.line)
        message = f"expected ',' or '{closer}' here, found {self.found(self.problem)}"
        if _BRACKETED_TYPE.search(text):
            hint = "inside {...} or [...], quote types with brackets: 'list[Money]'"
        elif (
            self.context is not None
            and self.context.line == self.problem.line
            and closer in text[self.problem.col - 1 :]
        ):
            hint = f"separate the entries of {opener}...{closer} with ','"
        elif self.context is not None:
            where = f"line {self.context.line}, column {self.context.col}"
            hint = f"is the '{opener}' at {where} missing its '{closer}'?"
        else:
            hint = f"close the {opener}...{closer} with '{closer}'"
        return self.at(f"{message}; {hint}")

    def colon(self) -> YamlProblem | None:
        if "mapping values" not in self.what:
            return None
        text = self.line(self.problem.line)
        before = text[: self.problem.col - 1]
        if ": " in before or ":\t" in before:
            key, _, value = text.partition(":")
            example = f"{key.strip()}: {_quoted(value.strip())}"
            return self.at(
                "a ': ' inside a value, where YAML reads it as the start of a mapping; "
                f"quote the whole value: {example}"
            )
        above = self.previous(self.problem.line)
        if above is not None:
            number, previous = above
            if match := _NO_SPACE.match(previous):
                key, value = match.group(2), match.group(3)
                return self.at(
                    f"no space after ':' in {key}:{value}, so YAML reads that line as text "
                    f"that runs on to line {self.problem.line}; write {key}: {value}",
                    _Mark(number, len(match.group(1)) + len(key) + 1),
                )
            if (match := _BARE_WORD.match(previous)) and _indent(text) > _indent(previous):
                word = match.group(2)
                return self.at(
                    f"{word!r} has no ':' after it, so YAML reads it as text that runs on "
                    f"to line {self.problem.line}; write {word}:",
                    _Mark(number, len(match.group(1)) + len(word) + 1),
                )
            if (match := _KEY_VALUE.match(previous)) and _indent(text) > _indent(previous):
                key = text.strip().partition(":")[0]
                return self.at(
                    f"{key!r} is indented more than {match.group(1)!r} on line {number}, "
                    f"which already has a value; indent {key!r} like the keys around it",
                    _Mark(self.problem.line, _indent(text) + 1),
                )
        return self.at(
            "a ':' YAML cannot read as the end of a key here; check this line's indentation "
            "against the lines above, and quote values that contain ': '"
        )

    def missing_colon(self) -> YamlProblem | None:
        if "simple key" in self.during and self.context is not None:
            word = self.line(self.context.line).strip()
            return self.at(
                f"{word!r} has no ':' after it; a key needs one ({word}:), "
                "a list item starts with '- '",
                self.context,
            )
        if "sequence entries" in self.what:
            return self.at(
                "a list item ('- ') cannot follow a key on its line; start the list on the "
                "next line, indented, or write it as [...]"
            )
        return None

    def block(self) -> YamlProblem | None:
        if "block" not in self.during:
            return None
        char = self.char(self.problem)
        text = self.line(self.problem.line)
        starts_line = _indent(text) == self.problem.col - 1
        if char in _OPENER:
            return self.at(f"a '{char}' that closes nothing: no '{_OPENER[char]}' is open here")
        if "collection" in self.during or (char == "-" and starts_line):
            return self.at(
                "a list item ('- ...') and a key side by side: one level of indentation "
                "holds either list items or keys; indent one of them, or make both keys"
            )
        if starts_line:
            return self.misindented(text)
        quote = text[: self.problem.col - 1].rstrip()[-1:]
        if quote in ("'", '"'):
            return self.at(
                f"text after the closing {quote} of a quoted value; quote the whole value, "
                "and check that every quote opened above is closed"
            )
        return None

    def misindented(self, text: str) -> YamlProblem:
        indent = _indent(text)
        levels: list[int] = []  # the indentations still open above the line
        for number in range(self.problem.line - 1, 0, -1):
            earlier = self.line(number)
            if _COMMENT_OR_BLANK.match(earlier):
                continue
            if not levels or _indent(earlier) < levels[-1]:
                levels.append(_indent(earlier))
        below = max((level for level in levels if level < indent), default=None)
        above = min((level for level in levels if level > indent), default=None)
        options = " or ".join(str(level) for level in (below, above) if level is not None)
        key = text.strip().partition(":")[0]
        return self.at(
            f"{key!r} is indented by {indent} space(s), but the keys above it by {options}; "
            "the keys of one mapping must start in the same column"
        )

    def documents(self) -> YamlProblem | None:
        if "single document" not in self.during:
            return None
        return self.at(
            "a second YAML document starts here; a schema file holds one document (one "
            "context): put the other in a file of its own"
        )

    def alias(self) -> YamlProblem | None:
        if "undefined alias" not in self.what:
            return None
        rest = self.line(self.problem.line)[self.problem.col - 1 :]
        match = re.match(r"\*?([^\s,\[\]{}]*)", rest)
        name = match.group(1) if match else ""
        return self.at(
            f"'*{name}' refers to no anchor: define '&{name}' before it, or quote the "
            f"value if the '*' is part of the text: {_quoted('*' + name)}"
        )
