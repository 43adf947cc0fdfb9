"""Extract the full feature caches for the shared development data (train clean / dev clean / synthetic /
augmented views). Resumable: rerun after an interruption. Usage: python scripts/extract_dev_features.py MANIFEST"""

import sys

import numpy as np
import torch

from medsight import config
from medsight.training.dataset import read_manifest
from medsight.training.features import extract
from medsight.training.synthetic import augment, synthesize
from medsight.vision.backbone import load_backbone

manifest = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cxr/manifest.csv"
torch.set_num_threads(2)
bb = load_backbone("offline", "cpu")
train = read_manifest(manifest, "train")
dev = read_manifest(manifest, "dev")
root = config.CACHE_DIR / "features"
extract(train["path"], root / "train_clean", bb, view_name="clean")
extract(dev["path"], root / "dev_clean", bb, view_name="clean")
subset = np.random.default_rng(0).choice(len(train), 3000, replace=False)
extract(train["path"].iloc[np.sort(subset)], root / "train_synth", bb, view=lambda g, s: synthesize(g, s)[0], view_name="synth", seed=7)
extract(train["path"].iloc[np.sort(subset)], root / "train_aug", bb, view=augment, view_name="aug", seed=1)
print("all feature caches complete")
