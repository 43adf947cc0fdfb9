"""Latency benchmark: the backbone alone vs the whole pipeline (batch 1 and batched), on this machine."""

from __future__ import annotations

import statistics
import time

import numpy as np


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_bench(pipe, repeats: int = 5, batch: int = 16, seed: int = 0) -> dict:
    from medsight.imaging.load import LoadedImage
    from medsight.imaging.preprocess import to_backbone_tensor
    from medsight.vision.backbone import forward_taps

    rng = np.random.default_rng(seed)
    grays = [rng.integers(0, 256, (224, 224), dtype=np.uint8) for _ in range(batch)]
    images = [LoadedImage(g, "PNG", g.shape, 8) for g in grays]
    x1, xb = to_backbone_tensor(grays[:1]), to_backbone_tensor(grays)
    res = {
        "device": pipe.device,
        "detector": pipe.detector.name,
        "backbone_ms_per_image": 1000 * _time(lambda: forward_taps(pipe.backbone, x1), repeats),
        "pipeline_ms_per_image": 1000 * _time(lambda: pipe.score_images(images[:1]), repeats),
        "backbone_batched_ms_per_image": 1000 * _time(lambda: forward_taps(pipe.backbone, xb), max(1, repeats // 2)) / batch,
        "pipeline_batched_ms_per_image": 1000 * _time(lambda: pipe.score_images(images), max(1, repeats // 2)) / batch,
        "batch": batch,
    }
    res["pipeline_with_map_ms_per_image"] = 1000 * _time(lambda: pipe.score_with_map(images[0]), repeats)
    res["map_method"] = pipe.score_with_map(images[0])[2]
    res["pipeline_with_map_overhead_ratio"] = res["pipeline_with_map_ms_per_image"] / res["backbone_ms_per_image"]
    res["images_per_s"] = 1000.0 / res["pipeline_batched_ms_per_image"]
    res["pipeline_overhead_ratio"] = res["pipeline_ms_per_image"] / res["backbone_ms_per_image"]
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}
