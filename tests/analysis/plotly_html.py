"""Read plotly figures back out of a report's HTML (decoding plotly's base64 typed arrays)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np

_CALL = re.compile(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*")


def decode(value):
    """A plotly array: a list, or ``{"dtype": ..., "bdata": base64}``."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" not in value:
            return arr
        shape = value["shape"]
        dims = [int(v) for v in shape.split(",")] if isinstance(shape, str) else list(shape)
        return arr.reshape(dims)
    return np.asarray(value)


def figures(html: str) -> list[dict]:
    """Every ``Plotly.newPlot`` call's data and layout, in order."""
    out, dec = [], json.JSONDecoder()
    for m in _CALL.finditer(html):
        data, end = dec.raw_decode(html, m.end())
        end = html.index("{", end)
        layout, _ = dec.raw_decode(html, end)
        out.append({"data": data, "layout": layout})
    return out
