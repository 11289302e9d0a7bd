"""``multi30k``: Multi30k task 1 raw text (Elliott et al. 2016; 2017), any pair of en/fr/de.

Reads ``<split>.<lang>.gz`` from ``data.root``, or, without ``data.root``, from a cache folder
(``$ATTNRUN_CACHE/multi30k``) into which missing files are downloaded from the dataset's public
repository and verified against the SHA-256 sums below (the same as the repository's files).
"""

from __future__ import annotations

from pathlib import Path

from attnrun.errors import DataError
from attnrun.translate.data import Corpus, datasets, describe
from attnrun.translate.data.download import DownloadError, cache_root, cached, fetch
from attnrun.translate.data.readers import ReadReport, read_parallel

URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"
SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")
LANGUAGES = ("en", "fr", "de")
SHA256 = {
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
    "test_2017_flickr.fr.gz": "3ba671ceb2299f3304ffafefea7a833d08632fbaf0ba18546f8a2ec2391af496",
    "test_2017_mscoco.de.gz": "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338",
    "test_2017_mscoco.en.gz": "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58",
    "test_2017_mscoco.fr.gz": "754f3072ba9f124569ba5258b32730fc1d214bbf8e0c6dfb2b74401676220db0",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}


def file_name(split: str, lang: str) -> str:
    return f"{split}.{lang}.gz"


def locate(split: str, lang: str, root: str | None, opener=None) -> Path:
    """The path of ``<split>.<lang>.gz``: in ``root``, or cached (downloaded when missing)."""
    name = file_name(split, lang)
    if name not in SHA256:
        raise DataError(f"Multi30k has no file {name} (splits: {', '.join(SPLITS)})")
    if root is not None:
        path = Path(root).expanduser() / name
        if not path.is_file():
            raise DataError(
                f"{path}: missing; put the Multi30k task-1 raw files ({name}, ...) into "
                f"{Path(root).expanduser()} or leave data.root unset to download them"
            )
        return path
    folder = cache_root() / "multi30k"
    return fetch(URL.format(name=name), folder / name, SHA256[name], opener=opener)


def _test_split(cfg) -> str:
    """``data.test_split``, or Multi30k's default (a plain ``DataConfig()`` leaves it unset)."""
    return cfg.test_split or SPLITS[2]


def _check_choices(cfg) -> None:
    for key, lang in (("data.src", cfg.src), ("data.tgt", cfg.tgt)):
        if lang not in LANGUAGES:
            raise DataError(f"{key}={lang!r}: Multi30k has {', '.join(LANGUAGES)}")
    if _test_split(cfg) not in SPLITS[2:]:
        raise DataError(f"data.test_split={cfg.test_split!r}; valid: {', '.join(SPLITS[2:])}")


def check_multi30k(cfg, opener=None) -> None:
    """Every file the run reads is in ``data.root``, or in the cache (downloaded now if not);
    otherwise one :class:`DataError` naming every missing file and where to put it. After a
    failed download the rest are only looked for in the cache (no network: one attempt)."""
    _check_choices(cfg)
    splits = ("train", "val", _test_split(cfg))
    names = [file_name(s, lang) for s in splits for lang in (cfg.src, cfg.tgt)]
    if cfg.root is not None:
        root = Path(cfg.root).expanduser()
        missing: list[str] = [n for n in names if not (root / n).is_file()]
        if missing:
            raise DataError(
                f"data.root={cfg.root}: {len(missing)} Multi30k file(s) missing: "
                f"{', '.join(missing)} (the task-1 raw files; or leave data.root unset to "
                "download them)"
            )
        return
    folder = cache_root() / "multi30k"
    missing = []
    failure: DownloadError | None = None
    for name in names:
        if failure is not None:
            if not cached(folder / name, SHA256[name]):
                missing.append(name)
            continue
        try:
            fetch(URL.format(name=name), folder / name, SHA256[name], opener=opener)
        except DownloadError as e:
            failure, missing = e, [name]
    if failure is not None:
        raise DataError(
            f"could not download Multi30k ({failure.reason}); without network, put "
            f"{', '.join(missing)} into {folder} or give data.root=FOLDER holding them"
        )


@datasets.register("multi30k")
def load_multi30k(cfg, seed: int, opener=None) -> Corpus:
    """Train, val and ``data.test_split`` pairs for ``data.src`` → ``data.tgt``."""
    _check_choices(cfg)
    report = ReadReport()

    def split(name: str) -> list[tuple[str, str]]:
        src = locate(name, cfg.src, cfg.root, opener)
        tgt = locate(name, cfg.tgt, cfg.root, opener)
        return read_parallel(src, tgt, skip_bad=cfg.skip_bad, report=report)

    train = split("train")
    if cfg.n_train is not None:
        train = train[: cfg.n_train]
    val = split("val")[: cfg.n_val] if cfg.n_val else split("val")
    test = split(_test_split(cfg))
    return Corpus("multi30k", train, val, test, _test_split(cfg), skipped=report.skipped)


describe(load_multi30k, check=check_multi30k, test_splits=SPLITS[2:])
