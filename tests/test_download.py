"""``winnow data fetch|list`` and :mod:`retrieval.download`, with a local zip instead of the network."""

from __future__ import annotations

import urllib.error
import zipfile
from pathlib import Path

import pytest

from retrieval import download
from retrieval.cli import main
from retrieval.corpus import open_beir
from tests.conftest import write_beir


def beir_zip(tmp_path: Path, name: str) -> Path:
    """A zip laid out like the official BEIR ones: ``NAME/corpus.jsonl``, ``NAME/qrels/test.tsv``..."""
    source = write_beir(tmp_path / "src" / name)
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source.parent).as_posix())
    return archive


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The official URL template pointed at file:// zips in tmp_path/served/; returns the data root."""
    served = tmp_path / "served"
    served.mkdir()
    beir_zip(served, "scifact")
    monkeypatch.setattr(download, "BEIR_URL", served.as_uri() + "/{name}.zip")
    return tmp_path / "root"


def test_fetch_downloads_into_the_data_root_then_is_a_no_op(served: Path, capsys) -> None:
    assert main(["-q", "data", "fetch", "scifact", "--data-dir", str(served)]) == 0
    target = served / "beir" / "scifact"
    assert "downloaded scifact" in capsys.readouterr().out
    data = open_beir(target)  # the layout every reader expects
    assert set(data.queries("test")) == {"q1", "q2", "q3"} and data.qrels("test")["q3"] == {"d3": 2, "d4": 1}
    assert sorted(p.name for p in (served / "beir").iterdir()) == ["scifact"]  # no temporary left
    (target / "marker").write_text("kept")
    assert main(["-q", "data", "fetch", "scifact", "--data-dir", str(served)]) == 0
    assert "already present" in capsys.readouterr().out
    assert (target / "marker").read_text() == "kept"
    assert main(["data", "list", "--data-dir", str(served)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"data root: {served}", "beir/scifact"]


def test_fetch_uses_winnow_data(served: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("WINNOW_DATA", str(served))
    assert main(["-q", "data", "fetch", "scifact"]) == 0
    assert (served / "beir" / "scifact" / "corpus.jsonl").is_file()


def test_offline_fails_with_exit_2_and_says_how_to_use_a_local_copy(
    served: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def offline(url: str, target: Path, progress: bool) -> None:
        target.write_bytes(b"partial")
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "download_file", offline)
    assert main(["-q", "data", "fetch", "scifact", "--data-dir", str(served)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("winnow data: error: could not download scifact from ")
    assert "/scifact.zip" in err and "--data-dir DIR" in err and "WINNOW_DATA=DIR" in err
    assert "DIR/beir/scifact/" in err and "Traceback" not in err
    assert not any((served / "beir").iterdir())  # nothing half-written


@pytest.mark.parametrize(
    ("name", "message"),
    [("no-such-set", "unknown BEIR data set 'no-such-set'"), ("../etc", "is not valid")],
)
def test_unknown_or_invalid_names_are_refused(served: Path, name: str, message: str, capsys) -> None:
    assert main(["-q", "data", "fetch", name, "--data-dir", str(served)]) == 2
    assert message in capsys.readouterr().err
    assert not (served / "beir").exists()


def test_a_zip_that_is_not_a_beir_data_set_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("other/readme.txt", "hello")
    with pytest.raises(download.DownloadError, match="holds no other/corpus.jsonl"):
        download.fetch_beir("other", tmp_path / "root", url=archive.as_uri(), progress=False)
    assert not any((tmp_path / "root" / "beir").iterdir())


def test_list_of_an_empty_root_says_how_to_fetch(tmp_path: Path, capsys) -> None:
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_path}" in out and "winnow data fetch NAME" in out
