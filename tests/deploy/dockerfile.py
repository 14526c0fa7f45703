"""The Dockerfile as stages of instructions, and the build context `.dockerignore` leaves.

No Docker engine runs in CI, so the image is checked statically: `dockerfile-parse` reads the
file (line continuations, comments, JSON forms), and this module groups its instructions into
stages and applies `.dockerignore` as Docker does (last matching pattern wins, `!` re-includes,
a pattern that matches a folder matches everything in it).
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dockerfile_parse import DockerfileParser


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    value: str  # the text after the keyword, continuations joined


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.value for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def stages(text: str) -> list[Stage]:
    """The build stages of a Dockerfile, in order; instructions before the first FROM (ARG) are
    dropped, as they only parametrise FROM lines."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    found: list[Stage] = []
    for item in parser.structure:
        keyword = item["instruction"].upper()
        if keyword == "COMMENT":
            continue
        if keyword == "FROM":
            words = item["value"].split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(base=words[0], name=name))
        elif found:
            found[-1].instructions.append(Instruction(keyword, item["value"]))
    return found


def exec_form(value: str) -> list[str]:
    """``["a", "b"]`` (exec form) as a list; shell form is split as the shell would."""
    if value.lstrip().startswith("["):
        parsed = json.loads(value)
        if not all(isinstance(word, str) for word in parsed):
            raise ValueError(f"not a JSON list of strings: {value}")
        return list(parsed)
    return shlex.split(value)


def copy_sources(value: str) -> tuple[list[str], str | None]:
    """The sources of a COPY (all but the destination) and its ``--from`` stage, if any."""
    words = exec_form(value)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return paths[:-1], stage


class DockerIgnore:
    """`.dockerignore` patterns, matched as Docker matches them."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line[1:].strip() if include else line
            self.rules.append((include, str(PurePosixPath(pattern.lstrip("/")))))

    def excludes(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) is left out."""
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for include, pattern in self.rules:
            if any(_match(pattern, prefix) for prefix in prefixes):
                excluded = not include
        return excluded


def _match(pattern: str, path: str) -> bool:
    """Go's filepath.Match per segment (``*`` never crosses ``/``), plus ``**`` for any number
    of segments, as Docker's pattern matcher does."""
    return _match_parts(pattern.split("/"), path.split("/"))


def _match_parts(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_match_parts(pattern[1:], path[n:]) for n in range(len(path) + 1))
    if not path or not fnmatch.fnmatchcase(path[0], pattern[0]):
        return False
    return _match_parts(pattern[1:], path[1:])


def files_under(root: Path, source: str) -> list[str]:
    """The files a COPY of ``source`` would take from the checkout at ``root`` (before
    `.dockerignore`), relative and sorted; ``__pycache__`` folders are not walked."""
    origin = root / source
    if origin.is_file():
        return [source]
    found = []
    for folder, subfolders, names in os.walk(origin):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        found += [(Path(folder) / name).relative_to(root).as_posix() for name in names]
    return sorted(found)
