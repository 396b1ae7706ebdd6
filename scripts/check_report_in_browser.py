"""Open an HTML report in headless Chromium, offline, and check that every figure renders.

    python scripts/check_report_in_browser.py out/demo/report.html [--screenshot docs/report.png]

Needs Debian's chromium (`apt-get install chromium`). Chromium runs with background networking
off and a proxy that goes nowhere, so anything the page tried to fetch would fail. The rendered
DOM must hold one drawn plotly chart (``svg.main-svg``) per ``Plotly.newPlot`` in the file.
Exit status 0 when all figures rendered.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--proxy-server=http://127.0.0.1:9", "--virtual-time-budget=20000"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2
    html = args.report.read_text()
    expected = html.count("Plotly.newPlot")
    url = args.report.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=300).stdout
        if args.screenshot:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1300,2400",
                            f"--screenshot={args.screenshot.resolve()}", url],
                           capture_output=True, text=True, timeout=300, check=True)
    drawn = len(re.findall(r'class="[^"]*\bsvg-container\b', dom))  # one per drawn chart
    print(f"{args.report}: {drawn} of {expected} figures rendered offline")
    return 0 if drawn == expected and expected > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
