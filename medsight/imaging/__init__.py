"""Reading radiographs from files (PNG, JPEG, DICOM) and the backbone's input contract."""

from medsight.imaging.load import ImageLoadError, LoadedImage, load_image
from medsight.imaging.preprocess import INPUT_CONTRACT, to_backbone_tensor, to_square

__all__ = ["ImageLoadError", "LoadedImage", "load_image", "INPUT_CONTRACT", "to_backbone_tensor", "to_square"]
