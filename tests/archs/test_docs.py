"""Every full YAML example in docs/architectures.md loads."""

from __future__ import annotations

import re

import archs

from ..conftest import REPO


def test_doc_examples_load():
    text = (REPO / "docs" / "architectures.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("version: 1")]
    families = {archs.loads(b, "docs/architectures.md").family for b in blocks}
    assert families == {"edge_npu", "gpu", "reram"}
