"""The 1000 ImageNet class names, shipped as package data (see data/IMAGENET_CLASSES.md)."""

from __future__ import annotations

import functools
from importlib import resources

from .errors import UsageError


@functools.cache
def class_table() -> tuple[tuple[str, str], ...]:
    """(wnid, label) for class ids 0..999."""
    text = resources.files("reportgen").joinpath("data/imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines()[1:] if line]
    table = tuple((wnid, label) for _, wnid, label in rows)
    if len(table) != 1000:
        raise RuntimeError(f"imagenet_classes.tsv has {len(table)} classes, expected 1000")
    return table


def label(class_id: int) -> str:
    return class_table()[class_id][1]


def resolve_target(text: str) -> int | None:
    """--target: "top1" -> None; a class id 0..999; or a label / WordNet id (any case)."""
    text = text.strip()
    if text.lower() == "top1":
        return None
    if text.isdigit():
        class_id = int(text)
        if 0 <= class_id < 1000:
            return class_id
        raise UsageError(f"--target {text}: class ids run from 0 to 999")
    wanted = text.lower()
    matches = [i for i, (wnid, name) in enumerate(class_table())
               if wanted in (name.lower(), wnid.lower())]
    if len(matches) == 1:
        return matches[0]
    near = [name for _, name in class_table() if wanted in name.lower()][:5]
    hint = f"did you mean: {', '.join(near)}?" if near else "use a class id 0..999 or an ImageNet label such as 'tabby'"
    raise UsageError(f"--target {text!r}: no ImageNet class has that name", hint=hint)
