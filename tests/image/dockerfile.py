"""Reading a Dockerfile without Docker: instructions, stages and the prune step's arguments."""

from __future__ import annotations

import re
import shlex

PINNED_PYTHON = re.compile(r"python:3\.11\.[0-9]+-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?")
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cc ")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "a continuation line runs off the end of the Dockerfile"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each stage, FROM first."""
    found: list[list[tuple[str, str]]] = []
    for instruction, args in instructions(text):
        if instruction == "FROM":
            found.append([])
        assert found, f"{instruction} before the first FROM"
        found[-1].append((instruction, args))
    return found


def two_stage_problems(text: str) -> list[str]:
    """What is wrong with the stages: not two, a base not a pinned slim Python 3.11, no builder."""
    all_stages = stages(text)
    problems = [] if len(all_stages) == 2 else [f"{len(all_stages)} stages, not 2"]
    for stage in all_stages:
        image = stage[0][1].split()[0]
        if not PINNED_PYTHON.fullmatch(image):
            problems.append(f"{image} is not a pinned python:3.11.x-slim tag")
    if all_stages and all_stages[0][0][1].split()[-1] != "builder":
        problems.append("the first stage is not named builder")
    return problems


def prune_arguments(text: str) -> dict[str, list[str]]:
    """The options the builder's ``prune_site.py`` step is given: {option: [values]}."""
    for instruction, args in instructions(text):
        if instruction != "RUN" or "prune_site.py" not in args:
            continue
        words = shlex.split(args.split("&&")[0])
        index = next(i for i, w in enumerate(words) if w.endswith("prune_site.py"))
        options: dict[str, list[str]] = {"site": [words[index + 1]]}
        rest = words[index + 2 :]
        for flag, value in zip(rest[::2], rest[1::2], strict=True):
            options.setdefault(flag.lstrip("-"), []).append(value)
        return options
    msg = "no RUN step runs prune_site.py"
    raise AssertionError(msg)


def final_stage_problems(text: str) -> list[str]:
    """What is wrong with the final stage: root user, build tools, files not from the builder."""
    final = stages(text)[-1]
    names = [instruction for instruction, _ in final]
    problems = []
    users = [args for instruction, args in final if instruction == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage runs as root")
    elif "ENTRYPOINT" in names and names.index("USER") > names.index("ENTRYPOINT"):
        problems.append("USER comes after ENTRYPOINT")
    for instruction, args in final:
        if instruction == "RUN" and (
            "apt-get install" in args
            or "pip install" in args
            or any(tool in args for tool in BUILD_TOOLS)
        ):
            problems.append(f"the final stage installs: {args}")
        if instruction == "COPY" and not args.startswith("--from=builder "):
            problems.append(f"the final stage copies from the context: {args}")
    return problems
