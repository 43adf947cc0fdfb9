"""Issue 10, one door: an image the gate rejects gets no risk band anywhere. `medsight score --json` says
`risk: null`, `scored: false` and the reasons; a real radiograph keeps its band. `medsight report` writes a PDF."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medsight.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def non_chest(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("nonchest")
    images = {"photo.png": data.astronaut(), "grey_photo.png": data.camera(), "text.png": data.text(),
              "ct_like.png": (np.asarray(Image.fromarray(data.shepp_logan_phantom()).resize((512, 512))) * 255).astype(np.uint8)}
    for name, array in images.items():
        Image.fromarray(array).save(folder / name)
    return sorted(folder.iterdir())


def test_non_chest_images_never_get_a_risk_band(non_chest, real_radiographs, capsys):
    film = real_radiographs[0][0]
    assert main(["score", "--json", str(film), *map(str, non_chest)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 1 + len(non_chest)
    assert records[0]["scored"] is True and records[0]["risk"] in ("LOW", "MEDIUM", "HIGH")
    for rec in records[1:]:
        assert rec["scored"] is False and rec["risk"] is None and rec["flagged"] is False, rec["file"]
        assert rec["reasons"] and rec["reasons"] == rec["gate"]["reasons"]
    assert main(["score", *map(str, non_chest)]) == 0
    text = capsys.readouterr().out
    assert text.count("not scored:") == len(non_chest) and " risk HIGH" not in text


def test_report_command_writes_a_pdf(real_radiographs, tmp_path, capsys):
    film = real_radiographs[0][0]
    out = tmp_path / "r" / "report.pdf"
    assert main(["report", str(film), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF") and out.stat().st_size > 20_000
    assert "wrote" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing.png"), "--out", str(out)]) == 2
