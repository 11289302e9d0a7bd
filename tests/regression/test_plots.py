import torch

from attnrun.regression.data import make_synthetic
from attnrun.regression.models import poolings
from attnrun.regression.plots import plot_attention, plot_loss, plot_predictions

PNG = b"\x89PNG\r\n\x1a\n"


def test_three_pngs(tmp_path):
    d = make_synthetic(seed=0)
    r = poolings.get("parametric")(
        d.x_train, d.y_train, d.x_test, epochs=3, generator=torch.Generator().manual_seed(0)
    )
    plot_predictions(
        tmp_path / "predictions.png", d.x_train, d.y_train, d.x_test, r.y_pred, d.y_test
    )
    plot_attention(tmp_path / "attention.png", r.weights, d.x_test, d.x_train)
    plot_loss(tmp_path / "loss.png", r.losses)
    for name in ("predictions.png", "attention.png", "loss.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "attention.png",
        "loss.png",
        "predictions.png",
    ]  # atomic writes leave no temporary files


def test_nan_predictions_and_unsorted_inputs_plot(tmp_path):
    x = torch.tensor([3.0, 1.0, 2.0])
    pred = torch.tensor([1.0, float("nan"), 2.0])
    plot_predictions(tmp_path / "p.png", x, pred.nan_to_num(), x, pred)
    plot_attention(tmp_path / "a.png", torch.eye(3), x, x)
    plot_loss(tmp_path / "l.png", [])
    assert all((tmp_path / n).exists() for n in ("p.png", "a.png", "l.png"))
