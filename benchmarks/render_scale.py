"""Rendering a report over many images, from synthetic records (no network): seconds of
each output, peak RSS, PDF pages and size, at each image count, each in a fresh process.

    .venv/bin/python benchmarks/render_scale.py [--counts 100,1000,10000] [--json render.json]

Targets (issue 9): 10,000 images render in under 2 minutes (charts, HTML, PDF,
results.json and results.csv; the records themselves are not timed), the PDF's pages do
not grow with the number of images, and peak memory stays flat (measured: peak RSS at the
largest count against the smallest).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[3], sys.argv[3] + "/tests"]
from synthetic import synthetic_result
from reportgen import output, pipeline
from reportgen.progress import Progress
from pypdf import PdfReader
count, root = int(sys.argv[1]), Path(sys.argv[2])
started = time.perf_counter()
result = synthetic_result(count, root)
records_s = time.perf_counter() - started
started = time.perf_counter()
output.write_outputs(result, pipeline.Workspace(root), ("html", "pdf"), started, Progress(1, quiet=True))
render_s = time.perf_counter() - started
print(json.dumps({"count": count, "records_s": records_s, "render_s": render_s,
                  "breakdown_s": {k: v for k, v in result.run["seconds"].items() if k != "network"},
                  "peak_rss_mb": output.peak_rss_mb(),
                  "peak_rss_before_pdf_mb": result.run.get("peak_rss_before_pdf_mb"),
                  "pdf_pages": len(PdfReader(root / "report.pdf").pages),
                  "pdf_bytes": (root / "report.pdf").stat().st_size,
                  "html_bytes": (root / "report.html").stat().st_size,
                  "csv_bytes": (root / "results.csv").stat().st_size}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="100,1000,10000")
    parser.add_argument("--json", type=Path, default=Path("render-scale.json"))
    args = parser.parse_args()
    rows = []
    for count in (int(n) for n in args.counts.split(",")):
        with tempfile.TemporaryDirectory(prefix="reportgen-render-") as folder:
            run = subprocess.run([sys.executable, "-c", CHILD, str(count), folder, str(REPO)],
                                 capture_output=True, text=True, check=True)
        row = json.loads(run.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{count:>6} images: render {row['render_s']:6.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in row['breakdown_s'].items())}), "
              f"peak RSS {row['peak_rss_mb']:.0f} MB, PDF {row['pdf_pages']} pages {row['pdf_bytes'] / 1e6:.1f} MB, "
              f"HTML {row['html_bytes'] / 1e6:.1f} MB; records built in {row['records_s']:.1f} s")
    largest, smallest = rows[-1], rows[0]
    checks = [
        (f"{largest['count']} images render in under 120 s", largest["render_s"] < 120,
         f"{largest['render_s']:.1f} s"),
        ("PDF pages do not grow", largest["pdf_pages"] == smallest["pdf_pages"],
         f"{smallest['pdf_pages']} -> {largest['pdf_pages']}"),
        ("peak RSS flat (largest <= 1.5 x smallest)", largest["peak_rss_mb"] <= 1.5 * smallest["peak_rss_mb"],
         f"{smallest['peak_rss_mb']:.0f} -> {largest['peak_rss_mb']:.0f} MB"),
    ]
    for name, met, measured in checks:
        print(f"  [{'met    ' if met else 'NOT MET'}] {name}: {measured}")
    args.json.write_text(json.dumps({"rows": rows, "checks": [
        {"target": n, "met": m, "measured": v} for n, m, v in checks]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
