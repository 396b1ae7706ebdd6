"""A spec file cut short must not read as a machine (issue 22, item 4).

A YAML file truncated inside a comment (or after any complete line of the optional trailing sections)
is valid YAML: without a check it loads as the machine with default sparse features and peripherals,
a dense machine. A written file ends with a newline; one whose last line has none is refused, with
the line, in one line, exit 2; so are an empty file and a FIFO (which would block the reader). Ten
cuts inside comments, evenly spread from the first comment to the last, of every preset's YAML twin.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from hwsim.cli import main

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted((REPO / "archs" / "presets").glob("*.yaml"))


def cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(args)
    return status, err.getvalue()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_a_spec_cut_inside_any_comment_is_refused(preset, tmp_path):
    text = preset.read_text()
    cuts = [m.start() + 2 for m in re.finditer("#", text)]
    assert len(cuts) > 50
    cuts = [*cuts[:: len(cuts) // 10], cuts[-1]]
    spec = tmp_path / "cut.yaml"
    for at in cuts:
        spec.write_text(text[:at])
        status, err = cli(["archs", "validate", str(spec)])
        line = text.count("\n", 0, at) + 1
        assert status == 2, f"{preset.name} cut at {at} (line {line}) was accepted"
        assert f"line {line}: the file ends inside a line" in err and err.count("\n") == 1, err
    spec.write_text(text)  # the whole file still loads
    assert cli(["archs", "validate", str(spec)])[0] == 0


def test_empty_and_fifo_specs_are_refused(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    status, err = cli(["archs", "validate", str(empty)])
    assert status == 2 and "the file is empty" in err
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for args in (["archs", "validate", str(fifo)], ["archs", "show", str(fifo)]):
        status, err = cli(args)
        assert status == 2 and "not a regular file" in err and err.count("\n") == 1, err
