"""Why the default detector's Grad-CAM sits on the image border (issue 16): Grad-CAM and HiResCAM of the fused score
and of each fused part that conv4_3 feeds, where their mass falls (atlas regions), and how much of each target's
gradient and of the conv4_3 activations lies on the 16-px border band. Dev films of scripts/explain_bar.py's draw.

    .venv/bin/python scripts/gradcam_parts.py --manifest ../shared/data/cxr/manifest.csv --abnormal 8 --normal 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


class _Target(torch.nn.Module):
    def __init__(self, backbone, fn):
        super().__init__()
        self.backbone, self.fn = backbone, fn

    def forward(self, x):
        return self.fn(self.backbone(x)).reshape(-1, 1)


def _parts(det) -> dict:
    """The fused score and, standardised as in the fusion, each part that reads conv4_3 (relu4_3)."""
    out = {"fused score": det.torch_score}
    for (name, signal), (mu, sd) in zip(det.config["parts"], det.config["z"]):
        part = det.parts[name]
        if "relu3_3" in signal:  # lies before conv4_3: no gradient reaches the CAM layer
            continue
        out[f"{name}.{signal}"] = lambda taps, p=part, s=signal, m=mu, d=sd: (p.torch_signals(taps)[s] - m) / d
    return out


def main(argv=None) -> int:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from explain_bar import dev_films
    from medsight.imaging.load import load_image
    from medsight.imaging.preprocess import to_backbone_tensor, to_square
    from medsight.vision.explain import private_backbone
    from medsight.vision.pipeline import AnomalyPipeline
    from medsight.vision.regions import map_location

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--abnormal", type=int, default=8)
    ap.add_argument("--normal", type=int, default=4)
    ap.add_argument("--detector", default="fused_lungs")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    films = dev_films(args.manifest, 50, 16)
    films = [*films[films.is_normal == 0].path[: args.abnormal], *films[films.is_normal == 1].path[: args.normal]]
    pipe = AnomalyPipeline.load(args.detector, device="cpu")
    rows = []
    for path in films:
        gray = to_square(load_image(path).pixels)
        row = {}
        for name, fn in _parts(pipe.detector).items():
            backbone = private_backbone(pipe.backbone)
            x = to_backbone_tensor([gray]).requires_grad_(True)
            with torch.enable_grad(), GradCAM(model=_Target(backbone, fn).eval(), target_layers=[backbone.features[21]]) as cam:
                cam(input_tensor=x, targets=[ClassifierOutputTarget(0)])
                a = cam.activations_and_grads.activations[0][0].numpy()
                g = cam.activations_and_grads.gradients[0][0].numpy()
            up = lambda m: cv2.resize(m.astype(np.float32), (224, 224), interpolation=cv2.INTER_LINEAR)  # noqa: E731
            gc = np.maximum((g.mean(axis=(1, 2))[:, None, None] * a).sum(0), 0)
            hr = np.maximum((g * a).sum(0), 0)
            row[name] = {"gradcam": map_location(up(gc)), "hirescam": map_location(up(hr)),
                         "gradient_on_border": map_location(up(np.abs(g).sum(0)))["border_mass"],
                         "activation_on_border": map_location(up(a.sum(0)))["border_mass"]}
        rows.append(row)
        print(f"{Path(path).name}: " + "; ".join(f"{k} Grad-CAM border {v['gradcam']['border_mass']:.2f}" for k, v in row.items()), flush=True)
    print("medians over", len(rows), "films:")
    for name in rows[0]:
        med = lambda f: float(np.median([f(r[name]) for r in rows]))  # noqa: E731
        print(json.dumps({"target": name,
                          "gradcam_border": round(med(lambda r: r["gradcam"]["border_mass"]), 3),
                          "gradcam_lung": round(med(lambda r: r["gradcam"]["lung_mass"]), 3),
                          "hirescam_border": round(med(lambda r: r["hirescam"]["border_mass"]), 3),
                          "gradient_on_border": round(med(lambda r: r["gradient_on_border"]), 3),
                          "activation_on_border": round(med(lambda r: r["activation_on_border"]), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
