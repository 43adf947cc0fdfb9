"""What the loaders return (`LoadedImage`) and the one error they raise (`ImageLoadError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class ImageLoadError(ValueError):
    """A file the user supplied cannot be read as a radiograph. The message is one whole sentence for the user,
    starting with the file's name."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # uint8, HxW, grayscale, 0 = black; long side at most config.MAX_LOADED_SIDE
    source_format: str  # "PNG", "JPEG", "DICOM", ...
    original_shape: tuple[int, int]  # (rows, columns) as stored in the file, before any reduction
    bit_depth: int
    #: mean HSV saturation (0-1) of the original when it was colour; 0 for grayscale. Used by the OOD gate.
    colourfulness: float = 0.0
    #: non-identifying acquisition facts (modality, view position, photometric interpretation)
    info: dict = field(default_factory=dict)
    #: plain-language sentences saying what reading the file changed (transparency flattened, extra frames dropped,
    #: image reduced, float samples stretched); empty when the file was read as it is. Show them beside the image.
    notes: list[str] = field(default_factory=list)


def exception_sentence(exc: BaseException) -> str:
    """An exception's own message, whole, on one line (no truncation, no trailing full stop)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(". ")
