#!/usr/bin/env python3
"""Checks that the folders of src/ run one way (docs/architecture.md, "Layers").

Reads every #include "folder/..." line under src/ and fails on:
  - an include of a folder that is not below the includer's layer (the diagram);
  - a cycle between folders (impossible when the first check passes; reported on its own so
    that a change of the diagram cannot hide one);
  - Asio or Beast reaching a folder that must compile without them, directly or through a
    project header that includes them;
  - a library in CMakeLists.txt (zena_<folder>) that compiles a source of another folder.
Exits 0 and prints a one-line summary when the tree is clean.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Lowest first. A folder may include the folders of the layers before its own, never its own
# layer's other folders or a later layer's. src/main.cpp belongs to app.
LAYERS = [
    ["util"],
    ["observability"],
    ["ws"],
    ["protocol"],
    ["auth", "redis"],
    ["hub", "upstream"],
    ["engine"],
    ["config"],
    ["session"],
    ["api"],
    ["admin"],
    ["net"],
    ["app"],
]
# The folders whose code may include Asio or Beast (they are the libraries built with the
# precompiled src/ws/asio.hpp and Boost's separate compilation).
ASIO_FOLDERS = {"ws", "redis", "upstream", "session", "net", "app"}

RANK = {folder: rank for rank, layer in enumerate(LAYERS) for folder in layer}
PROJECT_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ASIO_INCLUDE = re.compile(r"^\s*#\s*include\s+<boost/(asio|beast)[/.>]", re.M)


def folder_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC)
    return "app" if len(rel.parts) == 1 else rel.parts[0]


def main() -> int:
    files = sorted(p for p in SRC.rglob("*") if p.suffix in {".hpp", ".cpp", ".in"})
    text = {p: p.read_text() for p in files}
    problems = []
    edges = {}
    for path, body in text.items():
        own = folder_of(path)
        if own not in RANK:
            problems.append(f"{path.relative_to(ROOT)}: folder '{own}' is not in the diagram (scripts/check_layers.py)")
            continue
        for line_no, line in enumerate(body.splitlines(), 1):
            m = PROJECT_INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1).split("/")[0]
            if "/" not in m.group(1) or target == own:
                continue
            edges.setdefault(own, set()).add(target)
            if target not in RANK:
                problems.append(f"{path.relative_to(ROOT)}:{line_no}: includes '{m.group(1)}' of unknown folder '{target}'")
            elif RANK[target] >= RANK[own]:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line_no}: {own} includes {m.group(1)}, but {target} is not below {own}")

    # Cycles between folders (depth-first search over the folder graph).
    state = {}
    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                problems.append("folder cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [])

    # Asio and Beast, directly or through the project's headers.
    by_name = {str(p.relative_to(SRC)): p for p in files}
    memo = {}
    def pulls_asio(path, seen=()):
        if path in memo:
            return memo[path]
        if path in seen:
            return None
        body = text[path]
        if ASIO_INCLUDE.search(body):
            memo[path] = [str(path.relative_to(SRC))]
            return memo[path]
        for m in PROJECT_INCLUDE.finditer(body):
            inc = by_name.get(m.group(1))
            if inc is None:
                continue
            chain = pulls_asio(inc, seen + (path,))
            if chain:
                memo[path] = [str(path.relative_to(SRC))] + chain
                return memo[path]
        memo[path] = None
        return None
    for path in files:
        own = folder_of(path)
        if own in ASIO_FOLDERS:
            continue
        chain = pulls_asio(path)
        if chain:
            problems.append(f"{path.relative_to(ROOT)}: {own} must compile without Asio and Beast, but reaches them: "
                            + " -> ".join(chain))

    # Each folder's library compiles only that folder's sources.
    cmake = (ROOT / "CMakeLists.txt").read_text()
    for m in re.finditer(r"zena_library\((\w+)([^)]*)\)", cmake):
        name, sources = m.group(1), m.group(2)
        for source in re.findall(r"src/([\w/.]+)", sources):
            if source.split("/")[0] != name:
                problems.append(f"CMakeLists.txt: zena_{name} compiles src/{source}, which is not in src/{name}/")

    if problems:
        print("\n".join(problems))
        print(f"check_layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_layers: {len(files)} files, {sum(len(v) for v in edges.values())} folder edges, "
          f"{len(LAYERS)} layers, no cycle, no include against the diagram")
    return 0


if __name__ == "__main__":
    sys.exit(main())
