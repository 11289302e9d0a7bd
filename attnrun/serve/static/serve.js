
// attnrun serve's page: run pickers, the input, two panels side by side. Each panel holds one
// run's answer: the output, head toggles, the viewer (AttnrunViewer, attnrun/viz/viewer.py), a
// heatmap, or for a regress run the plot with its bandwidth slider. Every element is built with
// textContent, never innerHTML: typed text, tokens and run names are shown as text.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var config = JSON.parse(document.getElementById("serve-config").textContent);
  var KIND_ORDER = ["cross", "encoder_self", "decoder_self", "self", "encoder_rollout",
                    "decoder_rollout", "rollout"];
  var SIDES = {
    cross: ["target", "source"], encoder_self: ["source", "source"],
    decoder_self: ["target input", "target input"], self: ["tokens", "tokens"],
    encoder_rollout: ["source", "source"], decoder_rollout: ["target input", "target input"],
    rollout: ["tokens", "tokens"]
  };
  var runs = {}, order = [];
  var textBox = document.getElementById("text"), beamSel = document.getElementById("beam");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(v) {
    if (typeof v !== "number") return String(v);
    return Math.abs(v) >= 1000 || v === Math.round(v) ? String(v) : v.toPrecision(4);
  }
  function post(path, body) {
    return fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
        return j;
      });
    });
  }
  function runLabel(r) {
    var s = Object.keys(r.settings).map(function (k) { return k + "=" + r.settings[k]; });
    var m = Object.keys(r.metrics).slice(0, 1).map(function (k) {
      return k + " " + fmt(r.metrics[k]);
    });
    return [r.id, r.name, r.experiment].concat(s.slice(0, 3), m).join(" \u00b7 ");
  }

  // -- one panel: one run's answers ---------------------------------------------------------
  function Panel(slot) {
    this.root = document.getElementById("panel-" + slot);
    this.root.appendChild(document.getElementById("panel-template").content.cloneNode(true));
    this.run = null;
    this.off = {};        // "kind/layer/head" -> true: the heads switched off
    this.seq = 0;         // the newest request; older answers are dropped
    this.answered = 0;
    this.viewer = null;
    this.heatKey = null;
    this.request = null;
    this.query = null;
    this.bandwidth = null;
    var self = this;
    this.part(".save").addEventListener("click", function () { self.save(); });
    var slider = this.part(".bandwidth");
    slider.addEventListener("input", function () {
      self.bandwidth = Math.pow(10, Number(slider.value));
      self.part(".bandwidth-value").textContent = "h = " + fmt(self.bandwidth);
      self.predict();
    });
    this.part(".bandwidth-reset").addEventListener("click", function () {
      self.setBandwidth(self.run.bandwidth);
      self.predict();
    });
    this.part(".regress-plot").addEventListener("click", function (ev) { self.pick(ev); });
  }
  Panel.prototype.part = function (sel) { return this.root.querySelector(sel); };
  Panel.prototype.setRun = function (run) {
    this.run = run;
    this.off = {};
    this.viewer = null;
    this.heatKey = null;
    this.request = null;
    this.root.hidden = !run;
    this.root.dataset.run = run ? run.id : "";
    if (!run) return;
    this.part(".run-title").textContent = run.id + " \u00b7 " + run.experiment + " \u00b7 " +
      run.name;
    var info = Object.keys(run.settings).map(function (k) { return k + "=" + run.settings[k]; });
    Object.keys(run.metrics).forEach(function (k) { info.push(k + " " + fmt(run.metrics[k])); });
    this.part(".run-info").textContent = info.join(", ") + "  (" + run.path + ")";
    ["output", "notes", "panel-error", "saved"].forEach(function (c) {
      this.part("." + c).textContent = "";
    }, this);
    this.part(".attention").hidden = true;
    this.part(".regress").hidden = run.input !== "query";
    this.part(".save-row").hidden = run.input === "query";
    if (run.input === "query") {
      this.query = (run.x_range[0] + run.x_range[1]) / 2;
      this.setBandwidth(run.bandwidth);
      this.predict();
    }
  };
  Panel.prototype.setBandwidth = function (h) {
    var slider = this.part(".bandwidth"), row = this.part(".bandwidth-row");
    row.hidden = h === null || h === undefined;
    this.bandwidth = h;
    if (row.hidden) return;
    var c = Math.log10(h);
    slider.min = String((c - 2).toFixed(2));
    slider.max = String((c + 2).toFixed(2));
    slider.value = String(c);
    this.part(".bandwidth-value").textContent = "h = " + fmt(h);
  };
  Panel.prototype.body = function () {
    var run = this.run, body = { run: run.id };
    if (run.input === "query") {
      body.query = this.query;
      if (this.bandwidth !== null && this.bandwidth !== undefined) body.bandwidth = this.bandwidth;
      return body;
    }
    body.text = textBox.value;
    if (run.experiment === "translate") body.beam = Number(beamSel.value);
    body.ablate = Object.keys(this.off).sort().map(function (k) {
      var p = k.split("/");
      return { kind: p[0], layer: Number(p[1]), head: Number(p[2]) };
    });
    return body;
  };
  Panel.prototype.predict = function () {
    if (!this.run) return;
    var self = this, seq = ++this.seq, body = this.body();
    this.root.dataset.state = "busy";
    post("/api/predict", body).then(function (answer) {
      if (seq !== self.seq) return;
      self.request = body;
      self.part(".panel-error").textContent = "";
      self.part(".saved").textContent = "";
      if (self.run.input === "query") self.drawRegress(answer); else self.show(answer);
      self.done("done");
    }).catch(function (err) {
      if (seq !== self.seq) return;
      self.part(".panel-error").textContent = err.message;
      if (self.run.input === "text") {  // no stale answer under the error
        self.request = null;
        self.part(".output").textContent = "";
        clear(self.part(".notes"));
        self.part(".attention").hidden = true;
      }
      self.done("error");
    });
  };
  Panel.prototype.done = function (state) {
    this.answered += 1;
    this.root.dataset.state = state;
    this.root.dataset.answered = String(this.answered);
  };
  Panel.prototype.save = function () {
    var self = this;
    if (!this.request) return;
    post("/api/save", this.request).then(function (r) {
      self.part(".saved").textContent = "saved: " + r.folder;
    }).catch(function (err) { self.part(".saved").textContent = "not saved: " + err.message; });
  };

  // The answer of a text run: output, notes, toggles, viewer and heatmap.
  Panel.prototype.show = function (a) {
    this.part(".output").textContent = a.output;
    var notes = this.part(".notes");
    clear(notes);
    if (a.it) notes.appendChild(el("div", "it", a.it));
    if (a.candidates) {
      notes.appendChild(el("div", "candidates", "candidates: " + a.candidates.map(function (c) {
        return c.token + " " + c.probability.toFixed(2);
      }).join(", ") + " (" + a.answered_by + ")"));
    }
    if (a.unknown && a.unknown.length) {
      notes.appendChild(el("div", "unknown", "never seen by the model, read as <unk>: " +
        a.unknown.join(", ")));
    }
    if (a.ablate.length) {
      notes.appendChild(el("div", "ablated", "switched off: " + a.ablate.map(function (h) {
        return h.kind + " L" + (h.layer + 1) + " H" + (h.head + 1);
      }).join(", ")));
    }
    this.drawToggles(a);
    var kinds = KIND_ORDER.filter(function (k) { return k in a.attention; });
    var box = this.part(".attention");
    if (!kinds.length) {
      box.hidden = true;
      notes.appendChild(el("div", "no-attention", "this model has no attention to show " +
        "(decoder=none); source: " + a.source_tokens.join(" ")));
      return;
    }
    box.hidden = false;
    var views = kinds.map(function (k) {
      var v = a.views[k];
      return {
        kind: k, label: v.label || config.kind_labels[k] || k, queries: v.queries, keys: v.keys,
        layer_names: v.layer_names, query_label: SIDES[k][0], key_label: SIDES[k][1],
        initial_layer: 0, initial_head: 0, weights: a.attention[k]
      };
    });
    var data = { title: a.output, initial_view: 0, views: views };
    var self = this;
    this.heatKey = null;
    if (this.viewer) this.viewer.show(data, true);
    else {
      this.viewer = AttnrunViewer.mount(box, data, {
        onRender: function (info) { self.drawHeatmap(info); }
      });
    }
  };

  // "kind/layer/head" -> a span with the head's measured removal effect from the run's newest
  // `attnrun ablate` (GET /api/runs' "ablation"; none without one), e.g. "−0.12 bleu".
  function headEffects(ab) {
    var out = {};
    if (!ab) return out;
    var title = "removed: " + ab.metric + " changes by this much (attnrun ablate, " + ab.folder +
      ", " + ab.split + " split, mode " + ab.mode + (ab.intact === null ? "" : ", intact " +
      fmt(ab.intact)) + ")";
    ab.heads.forEach(function (h) {
      var d = Number(h.delta.toFixed(2));
      var text = (d < 0 ? "\u2212" : d > 0 ? "+" : "\u00b1") + Math.abs(d).toFixed(2);
      var span = el("span", "head-delta", " " + text + " " + ab.metric);
      var hurts = ab.lower_is_better ? d > 0 : d < 0;
      if (hurts) span.classList.add("hurts");
      span.title = title;
      out[h.kind + "/" + h.layer + "/" + h.head] = span;
    });
    return out;
  }

  // One checkbox per head (ticked: on); an RNN's one attention: on, or uniform when off.
  Panel.prototype.drawToggles = function (a) {
    var box = this.part(".toggles"), run = this.run, self = this;
    var effects = headEffects(run.ablation);
    clear(box);
    Object.keys(run.heads).forEach(function (kind) {
      var removable = run.heads_removable.indexOf(kind) >= 0;
      var set = el("fieldset", "toggle-kind");
      set.appendChild(el("legend", null, config.kind_labels[kind] || kind));
      run.heads[kind].forEach(function (n, layer) {
        var row = el("div", "toggle-layer");
        var names = a.views[kind] ? a.views[kind].layer_names : [];
        row.appendChild(el("span", "toggle-name", !removable ? "" :
          (names[layer] || "layer " + (layer + 1))));
        for (var h = 0; h < n; h++) {
          var key = kind + "/" + layer + "/" + h, label = el("label", "toggle");
          var box2 = el("input");
          box2.type = "checkbox";
          box2.className = "head-toggle";
          box2.checked = !self.off[key];
          box2.dataset.kind = kind;
          box2.dataset.layer = String(layer);
          box2.dataset.head = String(h);
          box2.addEventListener("change", (function (k) {
            return function (ev) {
              if (ev.target.checked) delete self.off[k]; else self.off[k] = true;
              self.predict();
            };
          })(key));
          label.appendChild(box2);
          label.appendChild(document.createTextNode(
            removable ? " H" + (h + 1) : " attention on (off: uniform weights over the source)"));
          if (effects[key]) label.appendChild(effects[key]);
          row.appendChild(label);
        }
        set.appendChild(row);
      });
      box.appendChild(set);
    });
  };

  // The matrix the viewer shows, as a heatmap with token labels; the hovered row outlined.
  Panel.prototype.drawHeatmap = function (info) {
    var svg = this.part(".heatmap"), m = info.matrix, v = info.view;
    var key = [v.kind, info.layer, info.head, this.answered].join("/");
    var CELL = 18, left = 12 + 8 * Math.min(20, Math.max.apply(null, v.queries.map(function (t) {
      return t.length;
    })));
    var top = 12 + 6 * Math.min(20, Math.max.apply(null, v.keys.map(function (t) {
      return t.length;
    })));
    if (key !== this.heatKey) {
      this.heatKey = key;
      clear(svg);
      var max = 0;
      m.forEach(function (row) { row.forEach(function (w) { if (w > max) max = w; }); });
      var width = left + CELL * v.keys.length + 10, height = top + CELL * v.queries.length + 10;
      svg.setAttribute("width", width);
      svg.setAttribute("height", height);
      svg.setAttribute("viewBox", "0 0 " + width + " " + height);
      v.queries.forEach(function (q, i) {
        var t = svgEl("text", { x: left - 4, y: top + CELL * i + CELL / 2, "text-anchor": "end",
                                "dominant-baseline": "middle", class: "heat-label" });
        t.textContent = q;
        svg.appendChild(t);
      });
      v.keys.forEach(function (k, j) {
        var x = left + CELL * j + CELL / 2, y = top - 4;
        var t = svgEl("text", { x: x, y: y, class: "heat-label",
                                transform: "rotate(-60 " + x + " " + y + ")" });
        t.textContent = k;
        svg.appendChild(t);
      });
      m.forEach(function (row, i) {
        row.forEach(function (w, j) {
          var shade = max > 0 ? w / max : 0;
          var c = svgEl("rect", {
            x: left + CELL * j, y: top + CELL * i, width: CELL - 1, height: CELL - 1,
            class: "cell", fill: "rgba(31, 119, 180, " + shade.toFixed(3) + ")",
            "data-row": i, "data-col": j, "data-weight": w
          });
          var tip = svgEl("title");
          tip.textContent = v.queries[i] + " \u2192 " + v.keys[j] + ": " + w.toFixed(3);
          c.appendChild(tip);
          svg.appendChild(c);
        });
      });
      svg.appendChild(svgEl("rect", { class: "heat-focus", x: 0, y: 0, width: 0, height: 0 }));
      var head = info.head === "mean" ? "mean of heads" : "head " + (info.head + 1);
      this.part(".heatmap-title").textContent = "Heatmap: " + v.label + ", " +
        v.layer_names[info.layer] + ", " + head + " (darkest = " + max.toFixed(3) + ")";
    }
    var focus = svg.querySelector(".heat-focus");
    if (info.side === "query") {
      focus.setAttribute("x", left - 1);
      focus.setAttribute("y", top + CELL * info.index - 1);
      focus.setAttribute("width", CELL * v.keys.length + 1);
      focus.setAttribute("height", CELL + 1);
    } else if (info.side === "key") {
      focus.setAttribute("x", left + CELL * info.index - 1);
      focus.setAttribute("y", top - 1);
      focus.setAttribute("width", CELL + 1);
      focus.setAttribute("height", CELL * v.queries.length + 1);
    } else {
      focus.setAttribute("width", 0);
    }
  };

  // -- regress: points, fit, the query's weights; click to move the query --------------------
  var PLOT = { w: 640, h: 380, left: 50, right: 15, top: 15, bottom: 95, bars: 60 };
  Panel.prototype.scales = function (a) {
    var xs = [this.run.x_range[0], this.run.x_range[1]];
    var ys = a.train.y.concat(a.grid.y.filter(function (v) { return v !== null; }));
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys), pad = 0.05 * (y1 - y0 || 1);
    y0 -= pad;
    y1 += pad;
    var innerW = PLOT.w - PLOT.left - PLOT.right, base = PLOT.h - PLOT.bottom;
    return {
      x: function (v) { return PLOT.left + (v - xs[0]) / (xs[1] - xs[0]) * innerW; },
      y: function (v) { return base - (v - y0) / (y1 - y0) * (base - PLOT.top); },
      inv: function (px) { return xs[0] + (px - PLOT.left) / innerW * (xs[1] - xs[0]); },
      y0: y0, y1: y1
    };
  };
  Panel.prototype.drawRegress = function (a) {
    var svg = this.part(".regress-plot"), s = this.scales(a);
    this.lastRegress = a;
    this.root.dataset.query = String(a.query);
    clear(svg);
    svg.setAttribute("width", PLOT.w);
    svg.setAttribute("height", PLOT.h);
    svg.setAttribute("viewBox", "0 0 " + PLOT.w + " " + PLOT.h);
    var base = PLOT.h - PLOT.bottom;
    svg.appendChild(svgEl("rect", { x: PLOT.left, y: PLOT.top, width: PLOT.w - PLOT.left -
      PLOT.right, height: base - PLOT.top, class: "plot-frame" }));
    [s.y0, (s.y0 + s.y1) / 2, s.y1].forEach(function (v) {
      var t = svgEl("text", { x: PLOT.left - 4, y: s.y(v), class: "axis-label",
                              "text-anchor": "end", "dominant-baseline": "middle" });
      t.textContent = fmt(v);
      svg.appendChild(t);
    });
    var maxW = Math.max.apply(null, a.weights) || 1;
    a.train.x.forEach(function (x, j) {
      var w = a.weights[j];
      svg.appendChild(svgEl("circle", { cx: s.x(x), cy: s.y(a.train.y[j]), r: 3.5,
        class: "train-point", "fill-opacity": (0.15 + 0.85 * w / maxW).toFixed(3),
        "data-weight": w }));
      var hgt = PLOT.bars * w / maxW;
      svg.appendChild(svgEl("rect", { x: s.x(x) - 1.5, y: PLOT.h - 10 - hgt, width: 3,
        height: hgt, class: "weight-bar", "data-index": j, "data-weight": w }));
    });
    var pieces = [], cur = [];
    a.grid.x.forEach(function (x, i) {
      var y = a.grid.y[i];
      if (y === null) { if (cur.length) pieces.push(cur); cur = []; return; }
      cur.push(s.x(x).toFixed(2) + "," + s.y(y).toFixed(2));
    });
    if (cur.length) pieces.push(cur);
    pieces.forEach(function (p) {
      svg.appendChild(svgEl("polyline", { points: p.join(" "), class: "fit" }));
    });
    var qx = s.x(a.query);
    svg.appendChild(svgEl("line", { x1: qx, x2: qx, y1: PLOT.top, y2: PLOT.h - 10,
                                    class: "query-line" }));
    if (a.prediction !== null) {
      svg.appendChild(svgEl("circle", { cx: qx, cy: s.y(a.prediction), r: 6,
                                        class: "prediction" }));
    }
    var label = svgEl("text", { x: PLOT.left, y: PLOT.h - 10 - PLOT.bars - 8, class: "axis-label" });
    label.textContent = "attention weights of the query over the training points";
    svg.appendChild(label);
    this.part(".output").textContent = a.output + "   (" + a.pooling + " pooling, " + a.kernel +
      " kernel" + (a.bandwidth ? ", h = " + fmt(a.bandwidth) : "") + ")";
  };
  Panel.prototype.pick = function (ev) {
    if (!this.lastRegress) return;
    var svg = this.part(".regress-plot"), box = svg.getBoundingClientRect();
    var px = (ev.clientX - box.left) * PLOT.w / box.width;
    var x = this.scales(this.lastRegress).inv(px);
    this.query = Math.min(this.run.x_range[1], Math.max(this.run.x_range[0], x));
    this.predict();
  };

  // -- the page -------------------------------------------------------------------------------
  var panels = { a: new Panel("a"), b: new Panel("b") };
  var pickA = document.getElementById("run-a"), pickB = document.getElementById("run-b");

  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    sel.appendChild(o);
  }
  function chosen() {
    return ["a", "b"].map(function (s) { return panels[s]; }).filter(function (p) {
      return p.run;
    });
  }
  function layout() {
    var texts = chosen().filter(function (p) { return p.run.input === "text"; });
    document.getElementById("input-form").hidden = !texts.length;
    document.getElementById("beam-label").hidden = !texts.some(function (p) {
      return p.run.experiment === "translate";
    });
    var limits = texts.map(function (p) { return p.run.id + ": " + p.run.max_tokens; });
    document.getElementById("limits").textContent = "At most " + config.max_chars +
      " characters; tokens per run: " + limits.join(", ") + ".";
    document.getElementById("panels").classList.toggle("two", !!panels.b.run);
  }
  function pickRun(slot, id) {
    var run = id ? runs[id] : null;
    panels[slot].setRun(run);
    if (run && run.input === "text" && !textBox.value && run.example) textBox.value = run.example;
    if (run && run.experiment === "translate") beamSel.value = String(run.beam);
    layout();
    if (run && run.input === "text" && textBox.value.trim()) panels[slot].predict();
  }
  pickA.addEventListener("change", function () { pickRun("a", pickA.value); });
  pickB.addEventListener("change", function () { pickRun("b", pickB.value); });
  document.getElementById("input-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    chosen().forEach(function (p) { if (p.run.input === "text") p.predict(); });
  });
  beamSel.addEventListener("change", function () {
    chosen().forEach(function (p) { if (p.run.experiment === "translate") p.predict(); });
  });
  textBox.maxLength = config.max_chars;
  for (var b = 1; b <= config.max_beam; b++) option(beamSel, String(b), b === 1 ? "1 (greedy)" :
    String(b));

  fetch("/api/runs").then(function (r) { return r.json(); }).then(function (j) {
    j.runs.forEach(function (r) {
      runs[r.id] = r;
      order.push(r.id);
      option(pickA, r.id, runLabel(r));
      option(pickB, r.id, runLabel(r));
    });
    if (order.length) pickRun("a", order[0]);
    document.body.setAttribute("data-ready", "true");
  }).catch(function (err) {
    document.getElementById("error").textContent = "cannot list the runs: " + err.message;
    document.body.setAttribute("data-ready", "true");
  });
})();
