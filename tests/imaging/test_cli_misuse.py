"""Every misuse of `medsight score` is one line `medsight: error: ...` and exit 2, without a traceback."""

import subprocess
import sys

import numpy as np
import pytest

from cxr_containers import png8
from medsight import config
from medsight.cli import main
from medsight.vision.detectors import available_detectors


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsight: error: ") and "Traceback" not in err, err
    return lines[0]


def _exit_code(argv) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_no_arguments(capsys):
    assert _exit_code([]) == 2
    assert "no command given" in _one_error_line(capsys)


def test_unknown_command(capsys):
    assert _exit_code(["scor", "x.png"]) == 2
    assert "unknown command" in _one_error_line(capsys)


def test_score_without_images(capsys):
    assert _exit_code(["score"]) == 2
    assert "needs at least one image file" in _one_error_line(capsys)


def test_score_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.png"
    assert _exit_code(["score", str(missing)]) == 2
    line = _one_error_line(capsys)
    assert f"{missing}: no such file" in line


def test_score_directory(tmp_path, capsys):
    assert _exit_code(["score", "--json", str(tmp_path)]) == 2
    assert "is a folder, not an image file" in _one_error_line(capsys)


@pytest.mark.parametrize("name", ["ood", "orientation", "no_such_detector"])
def test_score_unknown_detector_lists_the_real_ones(tmp_path, capsys, name):
    names = available_detectors(config.WEIGHTS_DIR)
    if not names:
        pytest.skip("no trained detectors in weights/")
    assert "ood" not in names and "orientation" not in names
    image = tmp_path / "film.png"
    image.write_bytes(png8(np.full((64, 64), 100, np.uint8)))
    assert main(["score", "--detector", name, str(image)]) == 2
    line = _one_error_line(capsys)
    assert f"no trained detector named {name!r}" in line and all(n in line for n in names)


def test_misuse_from_a_shell_has_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "medsight.cli", "score", str(tmp_path / "missing.dcm")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"medsight: error: {tmp_path / 'missing.dcm'}: no such file (see `medsight score --help`)"], out.stderr
