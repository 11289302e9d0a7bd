"""Data inputs are checked before a run folder exists: a missing file or an offline Multi30k is
one line, exit 2, and ``--root`` stays empty; the Multi30k message names every missing file.
A run's config and metrics name the same test split."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.translate.data import multi30k

runner = CliRunner()

NEEDED = [
    f"{split}.{lang}.gz" for split in ("train", "val", "test_2016_flickr") for lang in ("en", "fr")
]


def refused(root: Path, *args: str) -> str:
    """``attnrun translate --root ROOT ARGS``: exit 2, one line, nothing under ROOT."""
    r = runner.invoke(app, ["translate", "--root", str(root), *args])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("attnrun: error: ") and "\n" not in err, err
    assert list(root.iterdir()) == [], "a refused run left a folder"
    return err.removeprefix("attnrun: error: ")


def test_tsv_without_a_path(tmp_path):
    assert refused(tmp_path, "--dataset", "tsv") == (
        "dataset=tsv needs data.path=FILE (lines 'source<TAB>target')"
    )


def test_tsv_path_that_does_not_exist(tmp_path):
    err = refused(tmp_path, "--dataset", "tsv", f"data.path={tmp_path / 'nope.tsv'}")
    assert err == f"data.path={tmp_path / 'nope.tsv'}: file not found (lines 'source<TAB>target')"


def test_tatoeba_and_coref_paths_that_do_not_exist(tmp_path):
    assert "no such file" in refused(tmp_path, "-d", "tatoeba", "data.path=/no/fra.txt")
    assert "/no/lexicon.json" in refused(tmp_path, "-d", "coref", "data.path=/no/lexicon.json")


def test_multi30k_root_names_every_missing_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.en.gz").write_bytes(b"")  # present: not named
    root = tmp_path / "root"
    root.mkdir()
    err = refused(root, "--dataset", "multi30k", f"data.root={data}")
    assert err == (
        f"data.root={data}: 5 Multi30k file(s) missing: {', '.join(NEEDED[1:])} (the task-1 "
        "raw files; or leave data.root unset to download them)"
    )


def test_multi30k_offline_names_every_file_and_tries_the_network_once(tmp_path, monkeypatch):
    """No network and an empty cache: one download attempt, then the six files and where to
    put them; the test split named is the one asked for."""
    tried = []

    def offline(url):
        tried.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("attnrun.translate.data.download._default_opener", offline)
    monkeypatch.setenv("ATTNRUN_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "root"
    root.mkdir()
    err = refused(root, "--dataset", "multi30k", "data.test_split=test_2017_mscoco")
    files = [n.replace("test_2016_flickr", "test_2017_mscoco") for n in NEEDED]
    assert err == (
        "could not download Multi30k (URLError: <urlopen error no network>); without network, "
        f"put {', '.join(files)} into {tmp_path / 'cache' / 'multi30k'} or give "
        "data.root=FOLDER holding them"
    )
    assert len(tried) == 1


def test_multi30k_offline_with_a_full_cache_needs_no_network(tmp_path, monkeypatch):
    """Files already cached (checksums match) are not fetched again: the check passes."""
    monkeypatch.setenv("ATTNRUN_CACHE", str(tmp_path))
    folder = tmp_path / "multi30k"
    folder.mkdir()
    for name in NEEDED:
        (folder / name).write_bytes(name.encode())
    monkeypatch.setattr(multi30k, "SHA256", {n: _sha256(n.encode()) for n in NEEDED})

    def offline(url):
        raise AssertionError(f"fetched {url}")

    cfg = experiments.get("translate").make_config({"dataset": "multi30k"})
    multi30k.check_multi30k(cfg.data, opener=offline)


def test_a_test_split_the_dataset_lacks_is_refused(tmp_path):
    assert refused(tmp_path, "data.test_split=test_2017_flickr") == (
        "data.test_split='test_2017_flickr' is not valid; allowed: test (dataset=toy)"
    )


@pytest.mark.parametrize(
    ("dataset", "split"), [("toy", "test"), ("coref", "test"), ("multi30k", "test_2016_flickr")]
)
def test_the_default_test_split_is_the_datasets(dataset, split):
    cfg = experiments.get("translate").make_config({"dataset": dataset})
    assert cfg.data.test_split == split


def test_a_toy_runs_config_and_metrics_name_the_same_test_split(tmp_path):
    tiny = {
        "data": {"n_train": 60, "n_val": 4, "n_test": 4},
        "model": {"embed_size": 8, "num_hiddens": 8},
        "train": {"epochs": 1, "threads": 1},
        "decode": {"max_len": 8},
        "plot": {"heatmaps": 1},
    }
    experiments.get("translate")(tiny, tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert config["data"]["test_split"] == metrics["test_split"] == "test"


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_printing_the_config_reads_no_data(tmp_path):
    """``--cfg job`` only prints the config: a missing data folder is no error there."""
    r = runner.invoke(
        app, ["translate", "--root", str(tmp_path), "--cfg", "job", "-d", "multi30k", "data.root=x"]
    )
    assert r.exit_code == 0, r.output
    assert "root: x" in r.stdout and list(tmp_path.iterdir()) == []
