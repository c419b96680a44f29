"""The process the report's charts are drawn in, beside the main process's HTML and PDF
(render.charts.BackgroundCharts): ``python -m reportgen.render.chart_helper``.

It imports matplotlib once, then for each line on stdin (the path of a pickled
``(RunResult, root, lang, html_name)``) draws that report's charts, saying
``drawn <name>`` on stdout as each chart's file is written, then writes its screen HTML
if html_name is not None, and ends the job with one line: ``ok``, or
``error: <message>``. It ends when stdin closes (the run is over, or the main process
has gone)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

_started: subprocess.Popen | None = None
DRAWN = "drawn "    # the prefix of the line that says a chart's file is written


def start() -> None:
    """Start the helper now, early in a run, while a core is idle, so that it has imported
    matplotlib when the charts are due (cheap here: this module imports no matplotlib). A
    plain `python -m` child, not multiprocessing, which would run the parent's __main__
    module again in the child."""
    global _started
    if _started is not None and _started.poll() is None:
        return
    package_parent = str(Path(__file__).resolve().parents[2])
    paths = [package_parent] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    try:
        _started = subprocess.Popen([sys.executable, "-m", "reportgen.render.chart_helper"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True,
                                    env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)))
    except OSError:
        _started = None


def take() -> subprocess.Popen | None:
    """The started helper (started now if there is none) for one report, or None if none
    can start."""
    global _started
    start()
    helper, _started = _started, None
    return helper


def main() -> int:
    try:
        from . import charts, html
        html.warm_templates("en")   # compiled while the network runs (most runs are in English)
        for line in sys.stdin:
            try:
                with open(line.rstrip("\n"), "rb") as job:
                    result, root, lang, html_name = pickle.load(job)
                charts.render_job(result, Path(root), lang, html_name,
                                  on_drawn=lambda name: print(f"{DRAWN}{name}", flush=True))
                reply = "ok"
            except Exception as exc:    # reported to the main process, which draws them itself
                reply = f"error: {type(exc).__name__}: {exc}".replace("\n", " ")
            print(reply, flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
