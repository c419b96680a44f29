"""reportgen benchmark: model-compute floor vs end-to-end `reportgen run`, in one process run.

    .venv/bin/python benchmarks/bench.py [--images 16] [--repeat 3] [--json bench.json]
                                         [--scaling 10,100]

Seeded weights are saved once as .params files and given with --params, so weights load
exactly as pretrained ones would (from a file), not through the slower random init.

- floor: exactly one forward + one input backward per image and model, at the run's batch
  size, nothing else (weights loading, decoding, figures, HTML, PDF excluded);
- end-to-end: `reportgen run` in a fresh process, its own breakdown (results.json
  run.seconds), its peak RSS and the HTML and PDF sizes;
- medians over --repeat runs; ratios printed and written as JSON to compare runs;
- --scaling N1,N2: end-to-end once at each image count, for cost per image and peak RSS
  against the number of images (flatness).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ("vgg19", "vgg16", "resnet152")


def make_images(folder: Path, count: int) -> None:
    """`count` distinct photos: the samples, shifted and flipped."""
    from PIL import Image, ImageOps

    samples = sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".jpg", ".png"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = Image.open(samples[i % len(samples)]).convert("RGB")
        shift = 8 * (i // len(samples))
        img = img.crop((shift, shift, img.width - shift // 2, img.height - shift // 2))
        if (i // len(samples)) % 2:
            img = ImageOps.mirror(img)
        img.save(folder / f"img{i:03d}.jpg", quality=92)


def make_params(folder: Path, seed: int = 0) -> dict[str, Path]:
    from reportgen import models
    from reportgen.mx import mx

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in MODELS:
        path = folder / f"{name}-seed{seed}.params"
        if not path.exists():
            net = models.build_network(models.model_spec(name))
            mx.random.seed(seed)
            net.initialize(mx.init.Xavier())
            net(mx.nd.zeros((1, 3, 224, 224)))
            net.save_parameters(str(path))
        paths[name] = path
    return paths


def measure_floor(images: Path, params: dict[str, Path], batch_size: int) -> dict[str, float]:
    """Seconds of pure forward + input backward per model over all images."""
    import numpy as np

    from reportgen import images as imgs
    from reportgen import models
    from reportgen.analysis.gradients import forward_backward

    paths, _ = imgs.find_images([images])
    inputs = np.stack([imgs.normalize(imgs.decode(p).crop) for p in paths])
    seconds = {}
    for name in MODELS:
        net = models.build_network(models.model_spec(name))
        net.load_parameters(str(params[name]))
        split = models.prepare(net)
        forward_backward(split, inputs[:batch_size], None)      # warm-up: graph build
        started = time.perf_counter()
        for begin in range(0, len(inputs), batch_size):
            forward_backward(split, inputs[begin:begin + batch_size], None)
        seconds[name] = time.perf_counter() - started
        del split, net
    return seconds


def run_end_to_end(images: Path, params: dict[str, Path], out: Path, batch_size: int) -> dict:
    command = [sys.executable, "-m", "reportgen", "run", str(images), "-q", "-o", str(out),
               "--batch-size", str(batch_size)]
    for name, path in params.items():
        command += ["--params", f"{name}={path}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"reportgen run failed ({done.returncode}):\n{done.stderr}")
    results = json.loads((out / "results.json").read_text())
    return {
        "wall_s": wall,
        "seconds": results["run"]["seconds"],
        "peak_rss_mb": results["run"]["peak_rss_mb"],
        "pdf_bytes": (out / "report.pdf").stat().st_size,
        "html_bytes": (out / "report.html").stat().st_size,
        "assets_bytes": sum(p.stat().st_size for p in (out / "assets").iterdir()),
        "images": len(results["images"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--scaling", default="", help="e.g. 10,100")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reportgen-bench-"))
    try:
        params = make_params(work / "params")
        images = work / f"images{args.images}"
        make_images(images, args.images)

        floors, runs = [], []
        for i in range(args.repeat):
            floors.append(measure_floor(images, params, args.batch_size))
            runs.append(run_end_to_end(images, params, work / f"out{i}", args.batch_size))
        floor = statistics.median(sum(f.values()) for f in floors)
        total = statistics.median(r["seconds"]["total"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        breakdown = {key: statistics.median(r["seconds"].get(key, 0.0) for r in runs)
                     for key in runs[0]["seconds"]}
        pairs = args.images * len(MODELS)
        report = {
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(),
                        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "(reportgen default: all cores)")},
            "images": args.images, "models": list(MODELS), "batch_size": args.batch_size,
            "repeat": args.repeat,
            "floor_s": floor,
            "floor_per_model_s": {m: statistics.median(f[m] for f in floors) for m in MODELS},
            "end_to_end_s": total,
            "end_to_end_wall_s": wall,
            "ratio_end_to_end_to_floor": total / floor,
            "ratio_wall_to_floor": wall / floor,
            "breakdown_s": breakdown,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "pdf_bytes": runs[-1]["pdf_bytes"], "html_bytes": runs[-1]["html_bytes"],
            "pdf_bytes_per_image_model": runs[-1]["pdf_bytes"] / pairs,
        }
        if args.scaling:
            report["scaling"] = {}
            for count in (int(n) for n in args.scaling.split(",")):
                folder = work / f"scale{count}"
                make_images(folder, count)
                r = run_end_to_end(folder, params, work / f"scale-out{count}", args.batch_size)
                report["scaling"][count] = {
                    "end_to_end_s": r["seconds"]["total"], "per_image_s": r["seconds"]["total"] / count,
                    "html_s": r["seconds"]["html"], "pdf_s": r["seconds"].get("pdf", 0.0),
                    "peak_rss_mb": r["peak_rss_mb"], "pdf_bytes": r["pdf_bytes"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.images} images x {len(MODELS)} models, batch {args.batch_size}, "
          f"median of {args.repeat} (machine: {report['machine']['cpus']} CPUs)")
    print(f"  model-compute floor      {floor:8.1f} s   "
          + ", ".join(f"{m} {s:.1f}" for m, s in report["floor_per_model_s"].items()))
    print(f"  end-to-end (in process)  {total:8.1f} s   ratio {total / floor:.2f}  (target <= 1.15)")
    print(f"  end-to-end (wall)        {wall:8.1f} s   ratio {wall / floor:.2f}  (includes Python + MXNet start)")
    print("  breakdown: " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items()))
    print(f"  peak RSS {report['peak_rss_mb']:.0f} MB (target <= 2500); PDF {report['pdf_bytes'] / 1e6:.1f} MB "
          f"= {report['pdf_bytes_per_image_model'] / 1e6:.2f} MB per image x model (target <= 1); "
          f"HTML {report['html_bytes'] / 1e3:.0f} kB")
    for count, row in report.get("scaling", {}).items():
        print(f"  {count:4d} images: {row['end_to_end_s']:.1f} s, {row['per_image_s']:.2f} s/image, "
              f"HTML {row['html_s']:.2f} s, PDF {row['pdf_s']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
