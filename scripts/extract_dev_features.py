"""Extract the feature caches for the shared development data, in the order training needs them (train clean,
synthetic and augmented views, then dev). Resumable: rerun after an interruption; `medsight train` and
`medsight evaluate` find these caches. Usage: python scripts/extract_dev_features.py [MANIFEST]"""

import sys

import torch

from medsight.training.dataset import read_manifest
from medsight.training.features import cached_maps
from medsight.training.synthetic import augment, synthesize
from medsight.training.workflow import AUG_SEED, SYNTH_SEED, _backbone_factory, training_views

manifest = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cxr/manifest.csv"
torch.set_num_threads(2)
train = read_manifest(manifest, "train")
train = train[train["is_normal"] == 1].reset_index(drop=True)
dev = read_manifest(manifest, "dev")
factory = _backbone_factory("cpu")
cached_maps(train["path"], factory)
views = train["path"].iloc[training_views(train)]
cached_maps(views, factory, lambda g, s: synthesize(g, s)[0], "synth", SYNTH_SEED)
cached_maps(views, factory, augment, "aug", AUG_SEED)
cached_maps(dev["path"], factory)
print("all feature caches complete")
