import pytest
import torch

from attnrun.errors import ConfigError, DataError
from attnrun.regression.data import functions, holdout_split, load_csv, make_synthetic


def test_default_is_d2l_toy_problem():
    d = make_synthetic(seed=0)
    assert d.x_train.numel() == 50 and d.x_test.numel() == 50
    assert torch.all(d.x_train[1:] >= d.x_train[:-1])
    assert d.x_train.min() >= 0 and d.x_train.max() < 5
    torch.testing.assert_close(d.x_test, torch.arange(0, 5, 0.1))
    torch.testing.assert_close(d.y_test, 2 * torch.sin(d.x_test) + d.x_test**0.8)
    resid = d.y_train - (2 * torch.sin(d.x_train) + d.x_train**0.8)
    assert 0.3 < float(resid.std()) < 0.7


def test_seeded_and_options():
    a = make_synthetic("sin", n_train=20, noise=0.0, x_min=-1, x_max=1, seed=3)
    b = make_synthetic("sin", n_train=20, noise=0.0, x_min=-1, x_max=1, seed=3)
    assert torch.equal(a.x_train, b.x_train)
    torch.testing.assert_close(a.y_train, torch.sin(a.x_train))
    assert set(functions.names()) >= {"sin_pow", "sin", "linear", "step", "quadratic"}
    with pytest.raises(ConfigError, match="unknown function 'cube'"):
        make_synthetic("cube")
    with pytest.raises(ConfigError, match="x_min < x_max"):
        make_synthetic(x_min=2, x_max=1)


def test_holdout_split():
    x, y = torch.arange(10.0), torch.arange(10.0) * 2
    d = holdout_split(x, y, 0.3, torch.Generator().manual_seed(0))
    assert d.x_test.numel() == 3 and d.x_train.numel() == 7
    assert sorted(torch.cat([d.x_train, d.x_test]).tolist()) == x.tolist()
    torch.testing.assert_close(d.y_train, 2 * d.x_train)
    with pytest.raises(ConfigError, match=r"test_fraction=1.0 is not valid; allowed: \[0, 1\)"):
        holdout_split(x, y, 1.0)


def test_holdout_split_0_fits_on_every_point_without_a_draw():
    """Guards against test_fraction=0 holding a point out (statsmodels fits on all of them) or
    consuming the run's random stream."""
    x = torch.tensor([3.0, 1.0, 2.0, 0.0])
    y = x * 10
    g = torch.Generator().manual_seed(0)
    before = g.get_state()
    d = holdout_split(x, y, 0.0, g)
    assert d.x_train.tolist() == d.x_test.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert d.y_train.tolist() == d.y_test.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert torch.equal(g.get_state(), before)


def test_x_plus_sin_has_the_textbooks_settings():
    """Guards against x_plus_sin drawn with another function's settings."""
    d = make_synthetic("x_plus_sin", seed=0)
    assert d.x_train.numel() == 100 and 5 < d.x_train.max() < 10 and d.x_train.min() >= 0
    torch.testing.assert_close(d.x_test, torch.arange(0, 10, 0.1))
    torch.testing.assert_close(d.y_test, d.x_test + torch.sin(d.x_test))
    resid = d.y_train - (d.x_train + torch.sin(d.x_train))
    assert 0.75 < float(resid.std()) < 1.25
    small = make_synthetic("x_plus_sin", n_train=10, noise=0.0, seed=0)
    assert small.x_train.numel() == 10
    torch.testing.assert_close(small.y_train, small.x_train + torch.sin(small.x_train))
    f = functions.get("x_plus_sin")
    assert f.settings(noise=0.2) == {
        "n_train": 100,
        "noise": 0.2,
        "x_min": 0.0,
        "x_max": 10.0,
        "test_step": 0.1,
    }


def write(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return p


def test_load_csv_ok(tmp_path):
    x, y = load_csv(write(tmp_path, "x,y\n1,2\n 3 , 4\n\n5,6e-1\n"))
    assert x.tolist() == [1, 3, 5] and y.tolist() == pytest.approx([2, 4, 0.6])


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"d\.csv:1: empty file"),
        ("a,b\n1,2\n", r"d\.csv:1: bad header"),
        ("x,y\n1,2\n3\n4,5\n", r"d\.csv:3: expected two numbers"),
        ("x,y\n1,2\n3,4,5\n", r"d\.csv:3: expected two numbers"),
        ("x,y\n1,2\n3,four\n", r"d\.csv:3: not a number"),
        ("x,y\n1,2\n3,nan\n", r"d\.csv:3: NaN or inf"),
        ("x,y\n1,2\n\ninf,4\n", r"d\.csv:4: NaN or inf"),
        ("x,y\n1,2\n3,4\n", r"d\.csv:3: only 2 data rows; need at least 3"),
    ],
)
def test_load_csv_errors_name_file_and_line(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_csv(write(tmp_path, text))


def test_load_csv_missing(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_csv(tmp_path / "nope.csv")
