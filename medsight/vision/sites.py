"""Site profiles (issue 13): a hospital's own normal films as the detectors' reference.

Every shipped detector measures distance from *our* training normals, so a new site's acquisition chain looks
anomalous. A site profile holds what the site's normal films look like through the same frozen backbone:

- for the pooled k-NN detectors, the site's pooled embeddings per (layer, region): they become the bank, and the
  centred views are centred on the *site's* mean normal;
- for PatchCore, a coreset of the site's lung-field patches: it becomes the memory bank (and so the anomaly map's
  reference);
- for every detector, the z-standardisation of its parts and its calibration (threshold, risk bands, normal
  percentiles), re-estimated on site normals held out from the reference (cross-fitting by patient, see
  `medsight.vision.site_fit`).

A profile lives under `$MEDSIGHT_HOME/sites/NAME/` (default `~/.medsight`), never inside the package:
`profile.safetensors` (tensors) + `profile.json` (number of films, date, SHA-256 of the file list, per-detector
standardisation and calibration). `SiteProfile.adapt(detector)` returns a *new* detector that reads the site
reference; the shared, loaded detectors are never changed, and without a profile nothing changes.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from medsight.vision.detectors.base import Detector
from medsight.vision.scoring import Calibration

PROFILE_VERSION = 1
#: the fusion part a profile adds: a student-teacher head trained on the site's normals (tensors `site_student.*`)
STUDENT_PART = "site_student"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SiteError(ValueError):
    """A user-facing problem with a site profile (one sentence)."""


def medsight_home() -> Path:
    """The user's MedSight folder: `$MEDSIGHT_HOME`, else `~/.medsight` (read at call time)."""
    return Path(os.environ.get("MEDSIGHT_HOME") or Path.home() / ".medsight").expanduser()


def sites_dir() -> Path:
    return medsight_home() / "sites"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise SiteError(f"{name!r} is not a usable site name: use letters, digits, '-', '_' or '.' (at most 64, "
                        "starting with a letter or digit).")
    return name


def knn_key(member: dict) -> str:
    """Tensor key of a pooled k-NN member's site embeddings (members of one layer and region share them)."""
    region = "-".join(map(str, member["region"])) if member.get("region") else "full"
    return f"pooled.{member['layer']}.{region}"


@dataclass
class SiteProfile:
    name: str
    #: n_films, created, files_sha256, source, fit_seconds, method, detectors: {name: {z, calibration, trained_at}}
    meta: dict
    #: `pooled.<layer>.<region>`: N x C unit embeddings of the site's normals; `patch_bank`: M x D patches
    tensors: dict[str, torch.Tensor] = field(repr=False)
    saved: bool = False
    #: adapted copies per shared detector (the app builds its pipeline on every rerun)
    _adapted: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary, repr=False, compare=False)

    # -- applying ------------------------------------------------------------------------------------------------
    @property
    def detectors(self) -> dict:
        return self.meta.get("detectors", {})

    def adapt(self, det: Detector) -> Detector:
        """A copy of `det` that measures against the site's normals, with the site's standardisation and
        calibration. The original is not touched (the app shares loaded detectors between sessions)."""
        with _LOCK:
            done = self._adapted.get(det)
        if done is None:
            done = self._adapt(det)
            with _LOCK:
                self._adapted[det] = done
        return done

    def _adapt(self, det: Detector) -> Detector:
        entry = self.detectors.get(det.name)
        if entry is None:
            known = ", ".join(sorted(self.detectors)) or "none"
            raise SiteError(f"site profile {self.name!r} was not fitted for detector {det.name!r} (it holds: {known}); "
                            f"fit it again with `medsight site fit {self.name} ...`.")
        trained = (det.card or {}).get("trained_at")
        if entry.get("trained_at") and trained and entry["trained_at"] != trained:
            raise SiteError(f"site profile {self.name!r} was fitted for another version of detector {det.name!r} "
                            f"(trained {entry['trained_at']}, loaded {trained}); fit it again.")
        new = self.with_reference(det)
        new.card = dict(det.card or {}) | {"site": self.summary()}
        if det.kind == "fusion":
            new.parts = {d: self.adapt(p) for d, p in det.parts.items()}
            if entry.get("student"):
                new.parts[entry["student"]] = self.student(entry["student"])
                new.config["parts"] = [*det.config["parts"], [entry["student"], "score"]]
                new.components = tuple(f"{d}.{sig}" for d, sig in new.config["parts"])
        if entry.get("z") is not None:
            new.config["z"] = [list(map(float, z)) for z in entry["z"]]
        new.calibration = Calibration.from_dict(entry["calibration"])
        return new

    def student(self, part: str = STUDENT_PART) -> Detector:
        """The profile's student-teacher head (`medsight.vision.detectors.student`), from its tensors."""
        from medsight.vision.detectors.student import StudentDetector

        prefix = f"{part}."
        det = StudentDetector(part)
        det.load_tensors({k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)})
        det.card = {"site": self.name}
        return det

    def with_reference(self, det: Detector) -> Detector:
        """A copy of `det` whose reference (k-NN banks and centring means, PatchCore's memory bank) is the site's;
        standardisation and calibration are still the shipped ones (used while fitting)."""
        new = copy.copy(det)
        new.config = copy.deepcopy(det.config)
        new.site = self.name
        if det.kind == "pooled_knn":
            self._adapt_knn(new, det)
        elif det.kind == "patchcore":
            new.bank = self._patch_bank(det)
        return new

    def _adapt_knn(self, new: Detector, det: Detector) -> None:
        """Members get the site's normals as bank ("site"), ours and the site's ("union"), or ("auto", the default)
        uncentred members the site's bank while centred members keep ours: centring on our mean already removes
        the shared look of a hospital, and measured on dev NIH it ranks better than centring on the site's mean."""
        mode = self.meta.get("method", {}).get("knn_bank", "auto")
        union = mode == "union"
        means, banks = [], []
        for j, m in enumerate(det.config["members"]):
            if mode == "auto" and m.get("centred"):
                means.append(det.means[j])
                banks.append(det.banks[j])
                continue
            site = self.tensors[knn_key(m)].float().numpy()
            mean = site.mean(0).astype(np.float32)
            base = det.banks[j] + det.means[j] if m.get("centred") else det.banks[j]
            ref = np.concatenate([base, site]) if union else site
            means.append(mean)
            banks.append((ref - mean if m.get("centred") else ref).astype(np.float32))
        new.means = means
        new._set_banks(banks)

    def _patch_bank(self, det: Detector) -> torch.Tensor:
        site = self.tensors["patch_bank"].float()
        if self.meta.get("method", {}).get("patch_bank") == "union":
            return torch.cat([det.bank, site]).contiguous()
        return site.contiguous()

    # -- describing ----------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        keys = ("n_films", "n_patients", "created", "files_sha256", "source", "fit_seconds")
        return {"name": self.name, "saved": self.saved} | {k: self.meta.get(k) for k in keys}

    def calibration(self, detector: str) -> Calibration | None:
        entry = self.detectors.get(detector)
        return Calibration.from_dict(entry["calibration"]) if entry else None

    # -- storing -------------------------------------------------------------------------------------------------
    def save(self, root: str | Path | None = None, overwrite: bool = True) -> Path:
        folder = Path(root or sites_dir()) / check_name(self.name)
        if folder.exists() and not overwrite:
            raise SiteError(f"a site profile named {self.name!r} exists already; remove it first or choose another name.")
        tmp = folder.with_name(f".{self.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(tmp / "profile.safetensors"))
        (tmp / "profile.json").write_text(json.dumps(self.meta | {"name": self.name, "version": PROFILE_VERSION},
                                                     indent=1, default=float))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        self.saved = True
        return folder

    @classmethod
    def load(cls, name: str, root: str | Path | None = None) -> "SiteProfile":
        folder = Path(root or sites_dir()) / check_name(name)
        meta_path = folder / "profile.json"
        if not meta_path.is_file() or not (folder / "profile.safetensors").is_file():
            known = ", ".join(p["name"] for p in list_profiles(root)) or "none yet (make one with `medsight site fit`)"
            raise SiteError(f"there is no site profile named {name!r} in {folder.parent}; the profiles are: {known}.")
        key = (str(folder), meta_path.stat().st_mtime_ns)
        with _LOCK:
            if key not in _LOADED:
                meta = json.loads(meta_path.read_text())
                if meta.get("version") != PROFILE_VERSION:
                    raise SiteError(f"site profile {name!r} has format version {meta.get('version')}, this MedSight "
                                    f"reads {PROFILE_VERSION}; fit it again.")
                _LOADED[key] = cls(name, meta, load_file(str(folder / "profile.safetensors")), saved=True)
            return _LOADED[key]


_LOADED: dict[tuple, SiteProfile] = {}
_LOCK = threading.Lock()


def resolve(site: "str | SiteProfile | None") -> SiteProfile | None:
    """A profile from its name (loaded from the user's folder) or as given; None stays None."""
    if site is None or site == "":
        return None
    return site if isinstance(site, SiteProfile) else SiteProfile.load(site)


def list_profiles(root: str | Path | None = None) -> list[dict]:
    """Every saved profile's summary, by name."""
    folder = Path(root or sites_dir())
    out = []
    for meta_path in sorted(folder.glob("*/profile.json")):
        if meta_path.parent.name.startswith("."):
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        out.append(SiteProfile(meta_path.parent.name, meta, {}, saved=True).summary()
                   | {"detectors": sorted(meta.get("detectors", {})), "path": str(meta_path.parent)})
    return out


def remove_profile(name: str, root: str | Path | None = None) -> Path:
    folder = Path(root or sites_dir()) / check_name(name)
    if not (folder / "profile.json").is_file():
        raise SiteError(f"there is no site profile named {name!r} in {folder.parent}.")
    shutil.rmtree(folder)
    return folder
