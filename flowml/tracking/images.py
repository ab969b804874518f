"""MLflow's image logging: ``log_image`` and ``mlflow.Image``.

Two modes, as in MLflow 3.17 (``MlflowClient.log_image``):

- ``artifact_file="dir/x.png"`` saves the image as that artifact (format from the extension);
- ``key=..., step=..., timestamp=...`` writes the full image as
  ``images/<key, '/' → '~'>+step+<step>+timestamp+<ms>+<uuid4>.png`` plus a thumbnail (longest side
  256 px) as the same name ``+compressed.webp``, and sets the run tag ``mlflow.loggedImages=True``:
  the files and the tag the MLflow UI reads for its image charts.

numpy arrays (bool, integers in [0, 255], floats in [0, 1]; H x W, H x W x 1|3|4) and PIL images
are accepted, with MLflow's checks and messages. numpy and Pillow are imported on first use.
"""

from __future__ import annotations

import logging
import posixpath
import re
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image as PILImage

    from flowml.client import FlowmlClient

__all__ = ["COMPRESSED_IMAGE_SIZE", "LOGGED_IMAGES_TAG", "Image", "compress_image_size", "log_image"]

logger = logging.getLogger(__name__)

#: The run tag that tells the MLflow UI a run has step images (MLflow's ``MLFLOW_LOGGED_IMAGES``).
LOGGED_IMAGES_TAG = "mlflow.loggedImages"
#: Longest side of the thumbnail logged next to each step image.
COMPRESSED_IMAGE_SIZE = 256
_KEY_RE = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
_DTYPE_KINDS = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating"}


def _pil() -> Any:
    try:
        import PIL.Image
    except ImportError as exc:
        raise ImportError(
            "Pillow is required to serialize a numpy array as an image. "
            "Please install it via: `pip install Pillow`"
        ) from exc
    return PIL.Image


def compress_image_size(image: PILImage, max_size: int = COMPRESSED_IMAGE_SIZE) -> PILImage:
    """``image`` scaled so its longest side is ``max_size``, aspect ratio kept (MLflow's thumbnail)."""
    width, height = image.size
    if width > height:
        new_width, new_height = max_size, int(height * (max_size / width))
    else:
        new_width, new_height = int(width * (max_size / height)), max_size
    return image.resize((new_width, new_height))


def _to_uint8(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import numpy as np

    is_int = bool(np.issubdtype(x.dtype, np.integer))
    high = 255 if is_int else 1
    if x.min() < 0 or x.max() > high:
        if is_int:
            raise ValueError(
                "Integer pixel values out of acceptable range [0, 255]. "
                f"Found minimum value {x.min()} and maximum value {x.max()}. "
                "Ensure all pixel values are within the specified range."
            )
        warnings.warn(
            "Float pixel values out of acceptable range [0.0, 1.0]. "
            f"Found minimum value {x.min()} and maximum value {x.max()}. "
            "Rescaling values to [0.0, 1.0] with min/max scaler.",
            stacklevel=2,
        )
        x = (x - x.min()) / (x.max() - x.min())
    if not is_int:  # float or bool
        x = x * 255
    return x.astype(np.uint8)


def convert_to_pil_image(image: np.ndarray[Any, Any]) -> PILImage:
    """A numpy array as a PIL image, with MLflow's dtype, shape and range rules."""
    pil_image = _pil()
    if image.dtype.kind not in _DTYPE_KINDS:
        raise TypeError(
            f"Invalid array data type: '{image.dtype}'. Must be one of {list(_DTYPE_KINDS.values())}"
        )
    if image.ndim not in (2, 3):
        raise ValueError(f"`image` must be a 2D or 3D array but got image shape: {image.shape}")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError(f"Invalid channel length: {image.shape[2]}. Must be one of [1, 3, 4]")
    if image.ndim == 3 and image.shape[2] == 1:  # Image.fromarray refuses H x W x 1
        image = image[:, :, 0]
    converted: PILImage = pil_image.fromarray(_to_uint8(image))
    return converted


class Image:
    """MLflow's ``mlflow.Image``: a numpy array, a PIL image, a nested list or an image file path,
    held as a PIL image (``to_pil``, ``to_array``, ``to_list``, ``save``, ``resize``)."""

    def __init__(self, image: Any) -> None:
        import numpy as np

        pil_image = _pil()
        if isinstance(image, str):
            self.image: PILImage = pil_image.open(image)
        elif isinstance(image, list | np.ndarray):
            self.image = convert_to_pil_image(np.array(image))
        elif isinstance(image, pil_image.Image):
            self.image = image
        else:
            raise TypeError(
                f"Unsupported image object type: {type(image)}. "
                "`image` must be one of numpy.ndarray, "
                "PIL.Image.Image, or a filepath to an image."
            )
        self.size: tuple[int, int] = self.image.size

    def to_list(self) -> list[Any]:
        """The pixels in row order (tuples for multi-band images), as MLflow's ``to_list``."""
        flattened = getattr(self.image, "get_flattened_data", None)  # Pillow >= 12.1: getdata is deprecated
        return list(flattened() if flattened is not None else self.image.getdata())

    def to_array(self) -> np.ndarray[Any, Any]:
        import numpy as np

        return np.array(self.image)

    def to_pil(self) -> PILImage:
        return self.image

    def save(self, path: str) -> None:
        self.image.save(path)

    def resize(self, size: tuple[int, int]) -> Image:
        return Image(self.image.resize(size))


def _as_pil(image: Any) -> PILImage:
    import numpy as np

    if isinstance(image, np.ndarray):
        return convert_to_pil_image(image)
    if isinstance(image, Image):
        return image.to_pil()
    pil_image = _pil()
    if not isinstance(image, pil_image.Image):
        raise TypeError(
            f"Unsupported image object type: {type(image)}. "
            "`image` must be one of numpy.ndarray, "
            "PIL.Image.Image, and mlflow.Image."
        )
    result: PILImage = image
    return result


def _save_artifact(client: FlowmlClient, run_id: str, image: PILImage, artifact_file: str) -> None:
    """Save ``image`` under ``artifact_file``'s name (Pillow picks the format from it) and log it."""
    parent, name = posixpath.split(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        image.save(local)
        client.log_artifact(run_id, local, parent or None)


def log_image(
    client: FlowmlClient,
    run_id: str,
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
) -> None:
    """MLflow's ``MlflowClient.log_image`` (see the module doc). Always synchronous: flowml has no
    asynchronous artifact queue, so ``synchronous=False`` still returns after the upload."""
    if artifact_file is not None and any(arg is not None for arg in (key, step, timestamp)):
        raise TypeError(
            "The `artifact_file` parameter cannot be used in conjunction with `key`, "
            "`step`, or `timestamp` parameters. Please ensure that `artifact_file` is "
            "specified alone, without any of these conflicting parameters."
        )
    if artifact_file is None and key is None:
        raise TypeError(
            "Invalid arguments: Please specify exactly one of `artifact_file` or `key`. Use "
            "`key` to log dynamic image charts or `artifact_file` for saving static images. "
        )
    pil = _as_pil(image)
    if artifact_file is not None:
        _save_artifact(client, run_id, pil, artifact_file)
        return
    assert key is not None
    if not _KEY_RE.match(key):
        raise ValueError(
            "The `key` parameter may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), and slashes (/)."
            f"The provided key `{key}` contains invalid characters."
        )
    step = step or 0
    timestamp = timestamp or time.time_ns() // 1_000_000
    stem = f"images/{key.replace('/', '~')}+step+{step}+timestamp+{timestamp}+{uuid.uuid4()}"
    _save_artifact(client, run_id, pil, f"{stem}.png")
    _save_artifact(client, run_id, compress_image_size(pil), f"{stem}+compressed.webp")
    client.set_tag(run_id, LOGGED_IMAGES_TAG, True)
    logger.debug("Logged image %s of run %s (synchronous=%s)", stem, run_id, synchronous)
