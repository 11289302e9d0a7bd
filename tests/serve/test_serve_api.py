"""The JSON API of a real ``attnrun serve`` subprocess: the same answers as ``attnrun predict``,
heads switched off per request (against a plain re-implementation), rollout and regress against
plain formulas, every bad input a JSON 4xx, 32 concurrent clients, and run folders untouched."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from serve_helpers import SENTENCE, Server, tree_digest, write_test_ablation


def _predict(server, run, text=SENTENCE, **extra):
    status, body = server.post("/api/predict", {"run": run, "text": text, **extra})
    assert status == 200, body
    return body


def test_runs_lists_every_loaded_run_with_its_heads(server, run_ids, trained):
    """Guards the listing: every run folder with a model, its experiment and heads per kind."""
    status, body = server.get("/api/runs")
    assert status == 200
    by_name = {r["name"]: r for r in body["runs"]}
    assert set(by_name) == set(trained)
    tf = by_name["transformer"]
    assert tf["experiment"] == "translate" and tf["it"] is True
    assert tf["heads"] == {"encoder_self": [2, 2], "cross": [2, 2], "decoder_self": [2, 2]}
    assert by_name["rnn"]["heads"] == {"cross": [1]} and by_name["rnn"]["heads_removable"] == []
    assert by_name["none"]["heads"] == {}
    assert by_name["selfattn"]["heads"] == {"self": [4, 4, 4]}  # 2 blocks + the pointer
    assert by_name["regress"]["input"] == "query" and by_name["regress"]["bandwidth"] == 1.0
    assert "bleu" in tf["metrics"] and tf["settings"]["model"] == "transformer"


def test_runs_carry_the_newest_ablation_keyed_as_the_toggles(trained, tmp_path):
    """Guards the head toggles' measured effects: ``GET /api/runs`` gives a run the metric
    delta of every head of its newest ablation.json (not an older one, not a damaged newer
    file), keyed by the 0-based kind/layer/head the toggles and ``attention.json`` use; a run
    without an ablation has ``"ablation": null``."""
    for name in ("transformer", "rnn"):
        shutil.copytree(trained[name], tmp_path / name)
    tf = tmp_path / "transformer"
    write_test_ablation(tf, "2026-01-01/00-00-00", base=-5.0)  # older: must not show
    record = write_test_ablation(tf, "2026-01-02/00-00-00")
    damaged = tf / "ablations" / "2026-01-03" / "00-00-00"
    damaged.mkdir(parents=True)
    (damaged / "ablation.json").write_text("{not json")
    server = Server(str(tmp_path), "--port", "0")
    try:
        status, body = server.get("/api/runs")
    finally:
        server.stop()
    assert status == 200
    by_name = {r["name"]: r for r in body["runs"]}
    assert by_name["rnn"]["ablation"] is None
    ab = by_name["transformer"]["ablation"]
    assert ab["folder"] == "ablations/2026-01-02/00-00-00"
    assert (ab["split"], ab["mode"], ab["metric"], ab["intact"]) == ("test", "zero", "bleu", 2.0)
    assert ab["lower_is_better"] is False
    want = {
        (h["kind"], h["layer"], h["head"]): (h["deltas"]["bleu"], h["importance"])
        for h in record["heads"]
    }
    got = {(h["kind"], h["layer"], h["head"]): (h["delta"], h["importance"]) for h in ab["heads"]}
    assert got == want
    heads = by_name["transformer"]["heads"]  # every toggle (kind, layer < L, head < H) has one
    toggles = {(k, layer, h) for k, ns in heads.items() for layer, n in enumerate(ns)
               for h in range(n)}  # fmt: skip
    assert set(got) == toggles
    assert got[("encoder_self", 1, 0)] == (-0.04, 0.54)  # 0-based: encoder layer 2, head 1


@pytest.mark.parametrize("name", ["transformer", "rnn"])
def test_answer_is_exactly_what_predict_writes(server, run_ids, trained, tmp_path, name):
    """Guards "the same answer as predict": tokens and weights of every kind equal the
    attention.json and translations.json that attnrun predict writes for the sentence."""
    from attnrun.predictors import predict
    from attnrun.runs.files import read_attention

    copy = tmp_path / name
    shutil.copytree(trained[name], copy)
    _, out_dir = predict(copy, SENTENCE)
    written = {s.kind: s for s in read_attention(out_dir)}
    translation = json.loads((out_dir / "translations.json").read_text())[0]["translation"]
    got = _predict(server, run_ids[name])
    assert got["output"] == translation
    assert set(written) <= set(got["attention"])
    for kind, sample in written.items():
        assert got["views"][kind]["queries"] == sample.queries
        assert got["views"][kind]["keys"] == sample.keys
        assert got["attention"][kind] == np.round(sample.weights, 5).tolist(), kind
    assert got["source_tokens"] == written["cross"].keys
    assert got["target_tokens"] == written["cross"].queries


def test_selfattn_answer_is_predicts(server, run_ids, trained, tmp_path):
    """Guards the selfattn path: the antecedent and candidates of prediction.json."""
    from attnrun.predictors import predict

    copy = tmp_path / "sa"
    shutil.copytree(trained["selfattn"], copy)
    text = "the animal didn't cross the street because it was too tired ."
    _, out_dir = predict(copy, text)
    want = json.loads((out_dir / "prediction.json").read_text())
    got = _predict(server, run_ids["selfattn"], text)
    assert got["candidates"] == want["candidates"]
    assert got["antecedent"] == want["antecedent"] and got["it_index"] == want["it_index"]
    w = np.array(got["attention"]["self"])
    assert w.shape == (3, 4, 12, 12)
    assert np.allclose(w.sum(-1), 1.0, atol=1e-4)


def _reference_without_head(run_dir, kind, layer, head):
    """Translate SENTENCE with the head's slice of W_o's input zeroed by a forward pre-hook:
    the plain reference, which never uses attnrun.core.heads."""
    from attnrun.translate.predict import for_predict, translate_with_attention
    from attnrun.translate.translator import Translator

    translator = for_predict(Translator.from_run(run_dir))
    model = translator.model
    if kind == "encoder_self":
        mha = model.encoder.blocks[layer].attention
    else:
        block = model.decoder.blocks[layer]
        mha = block.self_attention if kind == "decoder_self" else block.cross_attention
    hd = mha.head_dim

    def hook(_module, args):
        x = args[0].clone()
        x[..., head * hd : (head + 1) * hd] = 0.0
        return (x,)

    mha.W_o.register_forward_pre_hook(hook)
    with torch.no_grad():
        hyps, samples = translate_with_attention(translator, [SENTENCE])
    return hyps[0], {s.kind: s for s in samples}


@pytest.mark.parametrize(("kind", "layer", "head"), [("encoder_self", 1, 0), ("cross", 0, 1)])
def test_a_head_off_is_the_plain_removal_and_its_map_is_zero(server, run_ids, trained, kind,
                                                            layer, head):  # fmt: skip
    """Guards the per-request ablation: the output and the other maps equal a model whose head's
    slice before W_o is zeroed; the removed head's map is answered as zeros."""
    got = _predict(server, run_ids["transformer"], ablate=[{"kind": kind, "layer": layer,
                                                            "head": head}])  # fmt: skip
    output, samples = _reference_without_head(trained["transformer"], kind, layer, head)
    assert got["output"] == output
    w = np.array(got["attention"][kind])
    assert not w[layer, head].any()
    ref = samples[kind].weights.copy()
    ref[layer, head] = 0.0
    np.testing.assert_allclose(w, ref, atol=1e-5)
    other = "decoder_self" if kind != "decoder_self" else "cross"
    np.testing.assert_allclose(got["attention"][other], samples[other].weights, atol=1e-5)
    assert got["ablate"] == [{"kind": kind, "layer": layer, "head": head}]
    intact = _predict(server, run_ids["transformer"])
    assert np.array(intact["attention"][kind])[layer, head].any()  # the next request: intact


def test_rnn_attention_off_is_uniform_over_the_source(server, run_ids):
    """Guards the RNN toggle: its one attention replaced by 1/S over the source tokens."""
    got = _predict(server, run_ids["rnn"], ablate=[{"kind": "cross", "layer": 0, "head": 0}])
    w = np.array(got["attention"]["cross"])[0, 0]  # (T, S)
    np.testing.assert_allclose(w, 1.0 / w.shape[1], atol=1e-5)


def _plain_rollout(w: np.ndarray) -> np.ndarray:
    """Abnar & Zuidema 2020 by hand: R = Π_l norm(0.5 I + 0.5 mean_h A_l)."""
    t = w.shape[-1]
    r = np.eye(t)
    for layer in w:
        a = 0.5 * np.eye(t) + 0.5 * layer.mean(0)
        r = (a / a.sum(-1, keepdims=True)) @ r
    return r


def test_rollout_kind_is_the_rollout_of_the_heads_left_on(server, run_ids):
    """Guards the rollout kind: the plain product of the layers' head means; with a head off,
    the mean over the heads still on."""
    got = _predict(server, run_ids["transformer"])
    w = np.array(got["attention"]["encoder_self"])
    np.testing.assert_allclose(got["attention"]["encoder_rollout"][0][0], _plain_rollout(w),
                               atol=1e-4)  # fmt: skip
    off = _predict(server, run_ids["transformer"],
                   ablate=[{"kind": "encoder_self", "layer": 0, "head": 1}])  # fmt: skip
    w = np.array(off["attention"]["encoder_self"])
    kept = w.copy()
    kept[0, 1] = kept[0, 0]  # layer 1's mean over heads = its one head still on
    np.testing.assert_allclose(off["attention"]["encoder_rollout"][0][0], _plain_rollout(kept),
                               atol=1e-4)  # fmt: skip


def test_regress_refits_at_the_bandwidth_asked(server, run_ids, trained):
    """Guards the regress answer against the plain Nadaraya-Watson formula with a Gaussian
    kernel: the prediction and the weights of the query at the bandwidth asked."""
    x, y = np.loadtxt(trained["regress"] / "train.csv", delimiter=",", skiprows=1).T
    for h in (0.2, 1.0):
        got = _predict(server, run_ids["regress"], text="", query=2.0, bandwidth=h)
        k = np.exp(-0.5 * ((2.0 - x) / h) ** 2)
        np.testing.assert_allclose(got["weights"], k / k.sum(), atol=1e-5)
        assert got["prediction"] == pytest.approx(float(k @ y / k.sum()), abs=1e-5)
        assert got["bandwidth"] == h and len(got["grid"]["x"]) == len(got["grid"]["y"])
    narrow = _predict(server, run_ids["regress"], text="", bandwidth=0.2)
    wide = _predict(server, run_ids["regress"], text="", bandwidth=1.0)
    assert narrow["grid"]["y"] != wide["grid"]["y"]


BAD = [
    # (body or raw bytes, status, words of the message)
    (b'{"run": "r1", "text": ', 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    ({"text": "hi"}, 400, '"run"'),
    ({"run": "nope", "text": "hi"}, 404, "no run 'nope'"),
    ({"run": "@tf", "text": 5}, 400, '"text" must be a string'),
    ({"run": "@tf", "text": "hi", "beam": "2"}, 400, '"beam" must be an integer'),
    ({"run": "@tf", "text": "hi", "beam": True}, 400, '"beam" must be an integer'),
    ({"run": "@tf", "text": "hi", "beam": 0}, 422, "beam must be 1..10"),
    ({"run": "@tf", "text": "hi", "colour": 1}, 400, "unknown field"),
    ({"run": "@tf", "text": "   "}, 422, "empty"),
    ({"run": "@tf", "text": "a\nb"}, 422, "one sentence"),
    ({"run": "@tf", "text": "x" * 1001}, 413, "at most 1000"),
    ({"run": "@tf", "text": "the " * 60}, 413, "tokens"),
    ({"run": "@tf", "text": "hi", "ablate": {"kind": "cross"}}, 400, "list"),
    ({"run": "@tf", "text": "hi", "ablate": [{"kind": "cross", "layer": 0}]}, 400, "ablate"),
    ({"run": "@tf", "text": "hi", "ablate": [{"kind": "nose", "layer": 0, "head": 0}]}, 422,
     "no attention kind 'nose'"),
    ({"run": "@tf", "text": "hi", "ablate": [{"kind": "cross", "layer": 7, "head": 0}]}, 422,
     "no attention cross layer 8"),
    ({"run": "@tf", "text": "hi", "ablate": [{"kind": "cross", "layer": 0, "head": 2}]}, 422,
     "heads 1..2"),
    ({"run": "@tf", "text": "hi", "ablate": [{"kind": "cross", "layer": -1, "head": 0}]}, 422,
     "never negative"),
    ({"run": "@none", "text": "hi", "ablate": [{"kind": "cross", "layer": 0, "head": 0}]}, 422,
     "no attention to switch off"),
    ({"run": "@sa", "text": "the animal was tired ."}, 422, 'no "it"'),
    ({"run": "@sa", "text": "the zebra didn't cross it ."}, 422, "never saw: zebra"),
    ({"run": "@rg", "query": "x"}, 400, '"query" must be a finite number'),
    ({"run": "@rg", "bandwidth": -1}, 422, "bandwidth must be"),
    ({"run": "@rg", "text": "hi"}, 422, "query"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "words"), BAD)
def test_bad_input_is_one_json_error_and_the_server_stays_up(server, run_ids, body, status,
                                                             words):  # fmt: skip
    """Guards every bad input of the issue: a 4xx with one message line, never a 500."""
    alias = {"@tf": run_ids["transformer"], "@none": run_ids["none"],
             "@sa": run_ids["selfattn"], "@rg": run_ids["regress"]}  # fmt: skip
    if isinstance(body, dict):
        body = {k: alias.get(v, v) if k == "run" else v for k, v in body.items()}
    got_status, got = server.post("/api/predict", body)
    assert got_status == status, got
    assert words in got["error"] and "\n" not in got["error"]
    assert server.get("/api/runs")[0] == 200


def test_oversized_body_and_wrong_content_type_and_foreign_host(server):
    """Guards the body limit (413), the JSON-only POSTs (415: no cross-site form can save) and
    the loopback Host check (400: no DNS rebinding)."""
    status, body = server.post("/api/predict", b"{" + b" " * 70_000 + b"}")
    assert status == 413 and "bytes" in body["error"]
    assert server.post("/api/predict", b"run=r1", "application/x-www-form-urlencoded")[0] == 415
    assert server.request("GET", "/api/runs", headers={"Host": "evil.example"})[0] == 400


@pytest.mark.parametrize(
    "path",
    ["/../../../../etc/passwd", "/static/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
     "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/api/../../etc/passwd", "/serve.js",
     "/static/serve.js", "/attnrun/serve/static/serve.js"],
)  # fmt: skip
def test_nothing_but_the_page_and_the_api_is_served(server, path):
    """Guards "only the page's own assets": traversals and package files are 404s that read
    nothing (no file content in the answer)."""
    import http.client

    host, port = server.url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)  # sent as written: no client-side normalisation
    r = conn.getresponse()
    body = r.read().decode()
    assert r.status == 404, (path, body)
    assert "root:" not in body and "function" not in body


def test_32_concurrent_clients_each_get_their_solo_answer(server, run_ids):
    """Guards "requests never change shared state": each of 32 random ablations answered
    concurrently equals its answer alone (a leaked intervention would mix them)."""
    rng = random.Random(0)
    heads = [(k, layer, h) for k in ("encoder_self", "cross", "decoder_self")
             for layer in range(2) for h in range(2)]  # fmt: skip
    bodies = []
    for _ in range(32):
        pick = rng.sample(heads, rng.randint(0, 4))
        ablate = [{"kind": k, "layer": layer, "head": h} for k, layer, h in pick]
        bodies.append({"run": run_ids["transformer"], "text": SENTENCE, "ablate": ablate})
    solo = [server.post("/api/predict", b) for b in bodies]
    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(lambda b: server.post("/api/predict", b), bodies))
    assert all(s == 200 for s, _ in solo)
    assert together == solo
    assert len({json.dumps(a["attention"]) for _, a in solo}) > 10  # the ablations differ


def test_save_writes_a_predictions_folder_as_predict_does(server, run_ids, trained):
    """Guards save: a new predictions/DATE/TIME folder with predict's files, nothing else
    written into the run."""
    run_dir = trained["rnn"]
    before = tree_digest(run_dir)
    status, body = server.post("/api/save", {"run": run_ids["rnn"], "text": SENTENCE})
    assert status == 200, body
    folder = Path(body["folder"])
    assert folder.parent.parent == run_dir / "predictions"
    assert (folder / "translations.json").is_file() and (folder / "attention.json").is_file()
    after = tree_digest(run_dir)
    new = {p for p in after if p not in before}
    assert all(p.startswith("predictions/") for p in new)
    assert {p: d for p, d in after.items() if p in before} == before
    status, body = server.post("/api/save", {"run": run_ids["regress"], "query": 1.0})
    assert status == 422 and "regress" in body["error"]
    shutil.rmtree(run_dir / "predictions")


def test_sigint_exits_0_quickly_and_run_folders_are_unchanged(trained, tmp_path):
    """Guards the shutdown and read-only promises: after answers and errors, with beam-10 requests
    sent just before, SIGINT (and SIGTERM) end the server with exit 0 within 2 s and no
    traceback, every run file byte for byte the same. (This tiny model answers too fast to keep
    a request running across the signal; that case was checked by hand on the coref recipe.)"""
    root = tmp_path / "runs"
    shutil.copytree(trained["transformer"].parent, root)
    before = tree_digest(root)
    for sig in (signal.SIGINT, signal.SIGTERM):
        s = Server(str(root), "--port", "0")
        _, runs = s.get("/api/runs")
        ids = {r["name"]: r["id"] for r in runs["runs"]}
        _predict(s, ids["transformer"], ablate=[{"kind": "cross", "layer": 0, "head": 0}])
        _predict(s, ids["regress"], text="", bandwidth=0.5)
        s.post("/api/predict", {"run": ids["selfattn"], "text": "no pronoun here"})
        busy = {"run": ids["transformer"], "text": " ".join([SENTENCE] * 4), "beam": 10}
        pool = ThreadPoolExecutor(32)  # requests still running when the signal comes
        for _ in range(96):
            pool.submit(s.post, "/api/predict", busy)
        time.sleep(0.5)
        start = time.monotonic()
        code = s.stop(sig)
        assert time.monotonic() - start < 2.0
        assert code == 0, s.proc.stderr.read()
        assert "Traceback" not in s.proc.stderr.read()
        pool.shutdown(wait=True)
    assert tree_digest(root) == before


def test_coref_it_line_says_when_there_is_no_it_or_its_head_is_off(server, run_ids, trained):
    """Guards the "it" line: predict's explanation, a message without "it", and no claim read
    off a head that is switched off."""
    best = json.loads((trained["transformer"] / "metrics.json").read_text())["coref_best_head"]
    run = run_ids["transformer"]
    assert _predict(server, run)["it"].startswith("it \u2192 ")
    assert 'no "it"' in _predict(server, run, "the cat was too tired .")["it"]
    off = [{"kind": "encoder_self", "layer": best[0] - 1, "head": best[1] - 1}]
    assert "is switched off" in _predict(server, run, ablate=off)["it"]
