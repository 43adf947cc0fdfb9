"""Fitting a site profile from the feature maps of a site's normal films (issue 13).

1. Site reference from all films: pooled embeddings for the k-NN detectors' members, a greedy coreset of
   lung-field patches for PatchCore (`medsight.vision.sites`).
2. Held-out site normals by cross-fitting: the films are split into folds by patient (by film where no patient is
   known); each fold is scored against the reference of the other folds' films (their embeddings, and the coreset
   patches that came from them). These out-of-fold signals give the
   z-standardisation of every k-NN member and fusion part, and every detector's calibration (threshold at their
   95th percentile, risk bands, normal percentiles). Each film thus serves both as reference and, once, as a
   held-out normal; the final reference (all films) is a little larger than each fold's, so new normals score a
   little lower than the held-out ones: the threshold errs towards fewer false alarms.
3. Detectors without a site reference (the paper's VAE + ViT, the multi-scale VAEs) are recalibrated only: their
   threshold and bands come from the site normals' scores.

Nothing here looks at an abnormal film.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
from typing import Callable, Sequence

import numpy as np
import torch

from medsight.vision.detectors.base import Detector
from medsight.vision.detectors.knn import _normalise, pooled_region
from medsight.vision.detectors.patchcore import greedy_coreset, region_mask
from medsight.vision.scoring import Calibration
from medsight.vision.detectors.student import StudentDetector
from medsight.vision.sites import PROFILE_VERSION, STUDENT_PART, SiteError, SiteProfile, check_name, knn_key

#: how the site's normals enter each reference: "site" (the site's normals alone), "union" (ours and the site's);
#: k-NN "auto": the site's bank for uncentred members, ours for centred ones (see `SiteProfile._adapt_knn`)
DEFAULT_METHOD = {"knn_bank": "auto", "patch_bank": "site", "patch_bank_size": 4000,
                  "student": True, "student_epochs": 30, "student_folds": 2}
MIN_FILMS = 10
FOLDS = 5


def files_sha256(names: Sequence[str]) -> str:
    """Hash of the (sorted) list of film names: says which films a profile was fitted on, without listing them."""
    return hashlib.sha256("\n".join(sorted(map(str, names))).encode()).hexdigest()


def group_folds(groups: Sequence, n_folds: int = FOLDS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(reference, held-out) index pairs; a patient's films stay in one fold (empty group: the film alone)."""
    keys = np.asarray([g if isinstance(g, str) and g else f"#{i}" for i, g in enumerate(groups)])
    uniq = np.unique(keys)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % min(n_folds, len(uniq))))
    f = np.array([fold_of[k] for k in keys])
    return [(np.flatnonzero(f != i), np.flatnonzero(f == i)) for i in range(f.max() + 1)]


def leaves(detectors: dict[str, Detector]) -> dict[str, Detector]:
    """The detectors that hold a reference (fusion parts expanded), by name."""
    out = {}
    for name, det in detectors.items():
        for d in (det.parts.values() if det.kind == "fusion" else [det]):
            if d.kind in ("pooled_knn", "patchcore"):
                out.setdefault(d.name, d)
    return out


def site_reference(maps: np.ndarray, detectors: dict[str, Detector], method: dict, seed: int = 0
                   ) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The site's normals as tensors: pooled unit embeddings per (layer, region) (one row per film) and a greedy
    coreset of lung-field patches; and for each coreset patch the index of the film it comes from."""
    tensors, owner = {}, np.zeros(0, dtype=int)
    for det in leaves(detectors).values():
        if det.kind == "pooled_knn":
            for m in det.config["members"]:
                key = knn_key(m)
                if key not in tensors:
                    tensors[key] = torch.from_numpy(_normalise(pooled_region(maps, m["layer"], m.get("region")))).half()
        elif det.kind == "patchcore" and "patch_bank" not in tensors:
            mask = torch.from_numpy(region_mask(**det.config["region"]))
            patches = torch.cat([det.patch_features(np.asarray(maps[i : i + 64], dtype=np.float32))[:, mask].reshape(-1, det.bank.shape[1])
                                 for i in range(0, len(maps), 64)])
            n = min(int(method.get("patch_bank_size", 4000)), len(patches))
            keep = np.sort(greedy_coreset(patches, n, seed=seed)) if n < len(patches) else np.arange(len(patches))
            tensors["patch_bank"] = patches[torch.from_numpy(keep)].half().contiguous()
            owner = keep // int(mask.sum())
    return tensors, owner


def _subset(tensors: dict[str, torch.Tensor], owner: np.ndarray, films: np.ndarray) -> dict[str, torch.Tensor]:
    """The reference of a subset of the films: their embedding rows and the coreset patches that came from them
    (a held-out fold never finds its own patches in the bank)."""
    out = {k: v[torch.from_numpy(films)] for k, v in tensors.items() if k.startswith("pooled.")}
    if "patch_bank" in tensors:
        out["patch_bank"] = tensors["patch_bank"][torch.from_numpy(np.flatnonzero(np.isin(owner, films)))]
    return out


def _signals(det: Detector, maps: np.ndarray, chunk: int = 64) -> dict[str, np.ndarray]:
    parts = [det.signals(np.asarray(maps[i : i + chunk], dtype=np.float32)) for i in range(0, len(maps), chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _zsum(values: list[np.ndarray], z: list[list[float]]) -> np.ndarray:
    total = sum((v - mu) / sd for v, (mu, sd) in zip(values, z))
    return np.asarray(total / np.sqrt(len(values)), dtype=np.float64)


def _z(v: np.ndarray) -> list[float]:
    return [float(np.mean(v)), float(np.std(v) + 1e-8)]


def fit_student(maps: np.ndarray, groups: Sequence, method: dict, say) -> tuple[StudentDetector, np.ndarray]:
    """The student-teacher part (`medsight.vision.detectors.student`) trained on all films, and each film's score
    from a student trained without its fold (`student_folds` patient folds: fewer than the reference's folds, as
    each costs a training)."""
    oof = np.zeros(len(maps))
    folds = group_folds(groups, int(method["student_folds"]), seed=1)
    epochs = int(method["student_epochs"])
    for f, (ref, held) in enumerate(folds):
        say(f"student-teacher head, held-out fold {f + 1} of {len(folds)}")
        oof[held] = StudentDetector.fit(maps[ref], epochs=epochs).signals(maps[held])["score"]
    say("student-teacher head on all films")
    return StudentDetector.fit(maps, STUDENT_PART, epochs=epochs), oof


def fit_profile(name: str, maps: np.ndarray, names: Sequence[str], detectors: dict[str, Detector],
                groups: Sequence | None = None, source: str = "", method: dict | None = None, n_folds: int = FOLDS,
                progress: Callable[[float, str], None] | None = None, before: bool = True) -> SiteProfile:
    """A site profile from the feature maps of a site's normal films (N x 1280 x 14 x 14), for the given loaded
    detectors (name -> detector, as shipped). `names` identify the films (hashed, not stored). `before`: also keep
    the shipped detectors' scores of these films (the app's before/after view; the study skips it)."""
    check_name(name)
    t0 = time.time()
    say = progress or (lambda frac, text: None)
    if len(maps) < MIN_FILMS:
        raise SiteError(f"a site profile needs at least {MIN_FILMS} normal films; got {len(maps)}.")
    method = dict(DEFAULT_METHOD) | dict(method or {})
    groups = list(groups) if groups is not None else [None] * len(maps)
    refs = leaves(detectors)
    detectors = refs | dict(detectors)  # a fusion's parts get their own entries (the fusion adapts them)
    probe = SiteProfile(name, {"method": method}, {})
    say(0.0, "site reference from all films")
    tensors, owner = site_reference(maps, refs, method)
    # out-of-fold raw signals of every reference-holding detector
    oof: dict[str, dict[str, np.ndarray]] = {}
    folds = group_folds(groups, n_folds)
    for f, (ref_idx, held) in enumerate(folds):
        say((f + 1) / (len(folds) + 1), f"held-out fold {f + 1} of {len(folds)}")
        probe.tensors = _subset(tensors, owner, ref_idx)
        for dname, det in refs.items():
            sig = _signals(probe.with_reference(det), maps[held])
            for k, v in sig.items():
                oof.setdefault(dname, {}).setdefault(k, np.zeros(len(maps)))[held] = v
    student = None
    if method.get("student") and any(d.kind == "fusion" for d in detectors.values()):
        student, student_oof = fit_student(maps, groups, method, lambda text: say(len(folds) / (len(folds) + 1), text))
        tensors |= {f"{STUDENT_PART}.{k}": v for k, v in student.tensors().items()}
    entries, shipped_view = {}, {}
    for dname, det in detectors.items():
        entry = {"trained_at": (det.card or {}).get("trained_at"), "kind": det.kind}
        if det.kind == "pooled_knn":
            entry["z"] = [_z(oof[dname][c]) for c in det.components]
            comps = [oof[dname][c] for c in det.components]
            scores = _zsum(comps, entry["z"]) if len(comps) > 1 else comps[0]
        elif det.kind == "patchcore":
            scores = oof[dname]["score"]
        elif det.kind == "fusion" and all(d in oof for d, _ in det.config["parts"]):
            vals = [oof[d][s] for d, s in det.config["parts"]]
            if student is not None:  # one more part: the site's student-teacher head
                vals.append(student_oof)
                entry["student"] = STUDENT_PART
            entry["z"] = [_z(v) for v in vals]
            scores = _zsum(vals, entry["z"])
        else:  # no site reference: recalibrated on the site's normals only
            entry["reference"] = "shipped"
            scores = None
        shipped = _signals(det, maps)["score"] if (before or scores is None) else None
        scores = shipped if scores is None else scores
        cal = Calibration.from_normal_scores(scores)
        entry["calibration"] = cal.to_dict()
        entries[dname] = entry
        if shipped is None:
            continue
        shipped_cal = det.calibration
        shipped_view[dname] = {"shipped_scores": [float(v) for v in np.sort(shipped)],
                         "shipped_threshold": float(shipped_cal.threshold) if shipped_cal else None,
                         "shipped_flag_rate": float(np.mean(shipped >= shipped_cal.threshold)) if shipped_cal else None}
    patients = len({g for g in groups if isinstance(g, str) and g}) or None
    meta = {"version": PROFILE_VERSION, "n_films": int(len(maps)), "n_patients": patients,
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "files_sha256": files_sha256(names), "source": source, "method": method, "n_folds": len(folds),
            "fit_seconds": round(time.time() - t0, 1), "detectors": entries, "before": shipped_view}
    say(1.0, "done")
    return SiteProfile(name, meta, tensors)
