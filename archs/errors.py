"""The one error a bad architecture description raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """Every problem found in an architecture description, each with its path and a hint.

    ``problems`` holds lines such as ``memories.glb.capacity_bytes: must be > 0, got -1``.
    """

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = [printable(p) for p in problems]
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            msg = head + self.problems[0]
        else:
            msg = head + f"{len(self.problems)} problems:\n" + "\n".join(f"  {p}" for p in self.problems)
        super().__init__(msg)


def printable(text: str) -> str:
    """``text`` with control characters (newlines included) escaped, so a problem stays one line even
    when it quotes a key or value that holds them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
