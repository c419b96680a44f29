"""One frozen RunConfig holds every setting of a run; the CLI only builds it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .i18n import N_
from .method_settings import MethodSettings

FORMATS = ("html", "pdf")
DEFAULT_TITLE = N_("CNN visualization: VGG vs ResNet")


@dataclass(frozen=True)
class RunConfig:
    inputs: tuple[Path, ...]
    output_dir: Path
    models: tuple[str, ...]
    weights: str = "pretrained"                 # "pretrained" | "untrained"
    params: dict[str, Path] = field(default_factory=dict)  # model name -> .params file
    model_root: Path | None = None
    target: str = "top1"                        # "top1", a class id, or a class name
    batch_size: int = 4
    seed: int = 0
    title: str = DEFAULT_TITLE                  # translated in the report when left as is
    author: str = ""
    formats: tuple[str, ...] = FORMATS
    save_arrays: bool = False
    quiet: bool = False
    command_line: tuple[str, ...] = ()
    attribution: MethodSettings = field(default_factory=MethodSettings)  # methods and checks
    workers: int | None = None                  # a local Dask cluster of this many workers
    scheduler: str | None = None                # or an existing Dask scheduler's address
    shard_size: int | None = None               # images per task on Dask (None: automatic)
    pages: int = 50                             # images with pages of their own, at most
    baseline: Path | None = None                # previous report to compare with (default:
                                                # the one in output_dir, if any)
    fail_on_drift: bool = False                 # exit 4 when drift exceeds the thresholds
    drift_spearman: float = 0.98                # a map correlating less has drifted
    drift_top1: int = 0                         # top-1 changes tolerated
    lang: str = "en"                            # the report's language (i18n.LANGS)

    def method_settings(self) -> MethodSettings:
        """The attribution settings with the run's seed."""
        return replace(self.attribution, seed=self.seed)
