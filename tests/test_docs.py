"""Every code block of README.md and docs/*.md runs as written (issue 22).

Blocks are taken in file order (README first) and run in one scratch directory, so a block may use
what an earlier one made (the tour's `run.trace` and `dst.trace`); `bench/`, `docs/` and `tests/`
are linked into it for the paths the docs give.

- ``python`` blocks are executed. A line ``expr  # -> value`` states an output: ``expr == value``.
- ``sh``/``bash`` blocks: each ``hwsim`` command (``.venv/bin/hwsim`` too) runs through
  ``hwsim.cli.main`` and must exit 0; smoke version: ``--epochs N`` runs one epoch (``epochs=N``
  in Python too) and a sweep without ``--scheduler`` runs in-process. ``hwsim archs list``'s
  comment, where it names the presets, must name them all. Commands in ``NOT_RUN`` are not run,
  each for the reason given.
- ``yaml`` blocks load: an architecture (``archs.loads``), a sweep spec or a mapping file; a
  fragment is checked inside a preset.
- Blocks without a language are outputs or diagrams: the README's demo excerpt is checked by
  tests/test_readme_demo.py; the others are listed in ``NOT_CODE`` with what they are.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# command (regex on the command line) -> why it is not run here
NOT_RUN = {
    r"^make (demo|test)\b": "builds .venv and runs the demo or the whole suite (CI runs make test; the "
                            "demo's excerpt: tests/test_readme_demo.py; its quick run: test_cli.py)",
    r"--dataset mnist --epochs 20": "20 epochs of MNIST (the README gives its cost); the DST rows' smoke "
                                    "versions run in tests/traces/test_reproduce.py",
    r"--dataset cifar10 --data-dir": "needs CIFAR-10's files and 160 epochs",
    r"--scheduler tcp://": "needs a running Dask cluster",
}
# (file name, first line of the block) -> what the block is
NOT_CODE = {
    ("README.md", "test accuracy"): "the demo's output, generated (tests/test_readme_demo.py)",
    ("methods.md", "forward"): "the update rule of a method, as formulas",
    ("sweeps.md", "DIR/spec.yaml"): "a directory listing",
    ("trace-format.md", "run.trace/"): "a directory listing",
}
# yaml fragments and what they are part of
FRAGMENTS = {"sparse:": "edge-npu", "compute:": "edge-npu"}  # a block over a preset's other sections


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks() -> list[Block]:
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
            out.append(Block(path, text[: m.start()].count("\n") + 1, m.group(1), m.group(2)))
    return out


BLOCKS = blocks()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    for name in ("bench", "docs", "tests"):
        (d / name).symlink_to(ROOT / name)
    return d


@pytest.fixture
def inside(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    return workdir


def commands(body: str) -> list[str]:
    """The shell block's commands: continuation lines joined, comments kept (for the checks)."""
    out, cur = [], ""
    for line in body.splitlines():
        if line.strip().startswith("#"):  # a comment continued from the line above
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip():
            out.append(cur.strip())
        cur = ""
    return out


def smoke(text: str) -> str:
    """One epoch instead of N; a sweep without a scheduler runs in-process (no Dask cluster)."""
    text = re.sub(r"epochs=\d+", "epochs=1", re.sub(r"--epochs \d+", "--epochs 1", text))
    if re.match(r"(\.venv/bin/)?hwsim sweep ", text) and "--scheduler" not in text:
        text += " --scheduler inprocess"
    return text


def run_command(line: str, capsys) -> None:
    from hwsim.cli import main

    command, _, comment = line.partition("  #")
    command = command.strip()
    for pattern in NOT_RUN:
        if re.search(pattern, command.removeprefix(".venv/bin/")):
            return
    argv = shlex.split(smoke(command))
    assert argv[0] in ("hwsim", ".venv/bin/hwsim"), f"not an hwsim command: {line}"
    redirect = argv.index(">") if ">" in argv else None
    target = argv[redirect + 1] if redirect is not None else None
    argv = argv[1:redirect] if redirect is not None else argv[1:]
    if argv[0] == "train" and "--out" in argv:  # an earlier block may have made it
        argv.append("--overwrite")
    capsys.readouterr()
    status = main(argv)
    out = capsys.readouterr()
    assert status == 0, f"{line}\n{out.err}"
    if target:
        Path(target).write_text(out.out, encoding="utf-8")
    if argv[:2] == ["archs", "list"] and "," in comment:
        import archs

        named = {n.strip() for n in comment.split(",")}
        assert named == set(archs.PRESETS), f"{line}: the presets are {list(archs.PRESETS)}"


def run_python(block: Block) -> None:
    lines = smoke(block.body).splitlines()
    stated = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(.+?)\s+# -> (.+?)(?:\s{2,}.*)?$", line)
        if m:
            lines[i] = f"{m.group(1)}_stated_{len(stated)} = {m.group(2)}"
            stated.append((m.group(2), m.group(3)))
    ns: dict = {}
    exec(compile("\n".join(lines), str(block.id), "exec"), ns)  # the docs' own code
    for k, (expr, value) in enumerate(stated):
        got = ns[f"_stated_{k}"]
        assert got == eval(value, ns), f"{block.id}: {expr} is {got!r}, the docs say {value}"


def load_yaml(block: Block) -> None:
    import archs
    from archs.loader import parse_yaml

    first = block.body.lstrip().splitlines()[0]
    if first in FRAGMENTS:
        base = archs.dump(archs.load(FRAGMENTS[first]))
        data = parse_yaml(base, "preset")
        data.update(parse_yaml(block.body, block.id))
        import yaml

        archs.loads(yaml.safe_dump(data))
        return
    data = parse_yaml(block.body, block.id)
    if "designs" in data:
        from analysis.sweep.spec import spec_from_dict

        spec_from_dict(data, source=block.id, root=Path.cwd())
    elif "family" in data:
        archs.loads(block.body)
    else:
        from hwsim.npu.mapping_file import load_mapping_file

        path = Path("mapping.yaml")
        path.write_text(block.body, encoding="utf-8")
        load_mapping_file(path)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_code_block_runs_as_written(block, inside, capsys):
    if block.lang in ("sh", "bash"):
        for line in commands(block.body):
            run_command(line, capsys)
    elif block.lang == "python":
        run_python(block)
    elif block.lang == "yaml":
        load_yaml(block)
    else:
        first = block.body.strip().splitlines()[0]
        assert any(block.path.name == f and first.startswith(p) for f, p in NOT_CODE), \
            f"{block.id}: a block without a language must be listed in NOT_CODE, or given one"


def test_every_command_not_run_is_in_the_docs():
    """No stale entries: each pattern of NOT_RUN matches a command the docs give."""
    lines = [line.partition("  #")[0].strip().removeprefix(".venv/bin/")
             for b in BLOCKS if b.lang in ("sh", "bash") for line in commands(b.body)]
    for pattern in NOT_RUN:
        assert any(re.search(pattern, line) for line in lines), pattern
