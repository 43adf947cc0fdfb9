"""Many sessions at once: threads that share one pipeline (backbone and detector, as the app's sessions do) each
score their own real radiograph and compute its Grad-CAM and anomaly map, all at the same time; each must get what
the same calls give alone, without errors. Grad-CAM's hooks on a shared backbone failed this: another thread's
forward pass fed them (the other image's map, or bf16 activations from an autocast pass)."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from medsight.imaging import load_image

pytestmark = pytest.mark.slow

SESSIONS = 6
ROUNDS = 2


@pytest.fixture(scope="module")
def shared_pipeline(cpu_backbone):
    from medsight import config
    from medsight.vision.detectors import available_detectors, load_detector
    from medsight.vision.pipeline import DEFAULT_DETECTOR, MAP_DETECTOR, AnomalyPipeline

    trained = available_detectors(config.WEIGHTS_DIR)
    if DEFAULT_DETECTOR not in trained:
        pytest.skip(f"no trained {DEFAULT_DETECTOR!r} detector in {config.WEIGHTS_DIR}")
    det = load_detector(config.WEIGHTS_DIR, DEFAULT_DETECTOR)
    companion = load_detector(config.WEIGHTS_DIR, MAP_DETECTOR) if MAP_DETECTOR in trained else None
    return AnomalyPipeline(cpu_backbone, det, map_detector=companion)


@pytest.fixture(scope="module")
def films(cxr_manifest):
    """Six different dev radiographs: one of each label, then more normals."""
    import pandas as pd

    dev = pd.read_csv(cxr_manifest).query("split == 'dev'")
    picks = pd.concat([dev.groupby("label").head(1), dev[dev.label == "normal"].iloc[1:]]).head(SESSIONS)
    return [load_image(cxr_manifest.parent / f) for f in picks.file]


def _session(pipeline, image, map_method):
    from medsight.vision.explain import explain

    return (pipeline.score(image).anomaly_score, explain(pipeline, image, "gradcam"), explain(pipeline, image, map_method))


def test_concurrent_sessions_get_their_own_score_and_maps(shared_pipeline, films):
    from medsight.vision.explain import available_methods

    map_method = available_methods(shared_pipeline)[0]
    assert map_method.startswith("anomaly_map")
    alone = [_session(shared_pipeline, im, map_method) for im in films]
    for a, b in itertools.pairwise(alone):  # the films differ, so a swapped map would be caught
        assert not np.allclose(a[1], b[1], atol=1e-3)

    results: dict[tuple[int, int], tuple] = {}
    errors: list[str] = []
    start = threading.Barrier(SESSIONS)

    def session(i: int) -> None:
        for r in range(ROUNDS):
            start.wait(60)
            try:
                results[i, r] = _session(shared_pipeline, films[i], map_method)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(f"session {i} round {r}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    wrong = []
    for (i, r), (score, cam, amap) in sorted(results.items()):
        ref_score, ref_cam, ref_map = alone[i]
        for what, ok in (("score", np.isclose(score, ref_score, atol=1e-5)),
                         ("gradcam", np.allclose(cam, ref_cam, atol=1e-4)),
                         ("anomaly map", np.allclose(amap, ref_map, atol=1e-5))):
            if not ok:
                wrong.append(f"session {i} round {r}: {what}")
    assert len(results) == SESSIONS * ROUNDS
    assert not wrong, f"{len(wrong)} of {3 * len(results)} results differ from the same call alone: {wrong}"


def test_gradcam_leaves_the_shared_backbone_untouched(shared_pipeline, films):
    """No hooks stay on (or are ever put on) the shared backbone, and no gradient reaches its weights."""
    import torch

    from medsight.vision.explain import explain, private_backbone

    backbone = shared_pipeline.backbone
    copy = private_backbone(backbone)
    assert copy is not backbone and copy.features[0] is not backbone.features[0]
    assert copy.features[0].weight.data_ptr() == backbone.features[0].weight.data_ptr()  # no weight copy
    assert not any(p.requires_grad for p in copy.parameters())
    hooked = []
    register = torch.nn.Module.register_forward_hook

    def spy(module, *args, **kwargs):
        hooked.append(module)
        return register(module, *args, **kwargs)

    shared_modules = {id(m) for m in backbone.modules()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.Module, "register_forward_hook", spy)
        explain(shared_pipeline, films[0], "gradcam")
    assert hooked and not any(id(m) in shared_modules for m in hooked)
    assert all(not m._forward_hooks for m in backbone.modules())
    assert all(p.grad is None for p in backbone.parameters())
