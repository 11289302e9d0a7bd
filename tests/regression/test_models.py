import pytest
import torch

import attnrun.regression.models as models_mod
from attnrun.errors import ConfigError
from attnrun.regression.data import make_synthetic
from attnrun.regression.models import ParametricNW, poolings, train_parametric
from attnrun.regression.nadaraya_watson import nadaraya_watson


@pytest.fixture
def d():
    return make_synthetic(seed=0)


def test_registry_lists_the_three_poolings():
    assert poolings.names() == ["average", "nonparametric", "parametric"]


def test_average_pooling(d):
    r = poolings.get("average")(d.x_train, d.y_train, d.x_test)
    torch.testing.assert_close(r.y_pred, d.y_train.mean().expand_as(d.x_test))
    torch.testing.assert_close(r.weights.sum(1), torch.ones(d.x_test.numel()))


def test_nonparametric_pooling_is_nadaraya_watson(d):
    r = poolings.get("nonparametric")(d.x_train, d.y_train, d.x_test, bandwidth=0.5)
    torch.testing.assert_close(
        r.y_pred, nadaraya_watson(d.x_test, d.x_train, d.y_train, "gaussian", 0.5)
    )
    torch.testing.assert_close(r.weights @ d.y_train, r.y_pred)
    assert r.bandwidth == 0.5


def test_parametric_forward_is_the_books_gaussian():
    m = ParametricNW("gaussian", w_init=2.0)
    q, k, v = torch.rand(4), torch.rand(6), torch.rand(6)
    pred, w = m(q, k, v)
    want = torch.softmax(-(((q[:, None] - k[None, :]) * 2.0) ** 2) / 2, dim=1)
    torch.testing.assert_close(w, want)
    torch.testing.assert_close(pred, want @ v)
    assert m.bandwidth == 0.5


def test_parametric_learns_and_loss_decreases(d):
    seen = []
    model, losses = train_parametric(
        d.x_train,
        d.y_train,
        epochs=5,
        generator=torch.Generator().manual_seed(0),
        callback=lambda e, loss, m: seen.append(e),
    )
    assert seen == [1, 2, 3, 4, 5] and len(losses) == 5
    assert losses[-1] < losses[0]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False))
    assert 0 < model.bandwidth < 1.0


def test_training_uses_the_self_exclusion_mask(d, monkeypatch):
    masks = []
    real = models_mod.masked_softmax

    def spy(scores, valid_lens=None, mask=None):
        masks.append(mask)
        return real(scores, valid_lens=valid_lens, mask=mask)

    monkeypatch.setattr(models_mod, "masked_softmax", spy)
    train_parametric(d.x_train, d.y_train, epochs=1, w_init=1.0)
    n = d.x_train.numel()
    assert masks and masks[0].shape == (1, n, n)
    assert torch.equal(masks[0][0], ~torch.eye(n, dtype=torch.bool))


def test_parametric_pooling_result(d):
    r = poolings.get("parametric")(
        d.x_train, d.y_train, d.x_test, epochs=3, generator=torch.Generator().manual_seed(1)
    )
    assert r.y_pred.shape == d.x_test.shape and len(r.losses) == 3
    assert r.weights.shape == (d.x_test.numel(), d.x_train.numel())
    assert r.bandwidth == r.model.bandwidth


def test_compact_kernel_and_adam_train_without_nan(d):
    model, losses = train_parametric(
        d.x_train, d.y_train, "epanechnikov", epochs=5, lr=0.05, optimizer="adam", w_init=0.5
    )
    assert all(torch.isfinite(torch.tensor(losses)))


def test_bad_training_options(d):
    with pytest.raises(ConfigError, match="unknown optimizer"):
        train_parametric(d.x_train, d.y_train, optimizer="lbfgs2")
    with pytest.raises(ConfigError, match="lr"):
        train_parametric(d.x_train, d.y_train, lr=0)
