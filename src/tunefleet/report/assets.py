"""The report page's stylesheet and script (inlined into every report; no network)."""

CSS = """
:root { --fg: #1d232a; --muted: #5f6b76; --line: #dfe3e8; --bg: #f6f8fa; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #fff; }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); background: var(--bg); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 8px 28px; border-bottom: 1px solid var(--line); position: sticky; top: 0;
      background: #fff; z-index: 10; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 10px 28px 40px; max-width: 1400px; }
h2 { font-size: 18px; margin: 26px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 14px;
         align-items: start; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; background: #fff; }
.card h3 { margin: 0 0 6px; font-size: 15px; }
table.kv { border-collapse: collapse; width: 100%; }
table.kv th { text-align: left; color: var(--muted); font-weight: normal; padding: 2px 10px 2px 0;
              vertical-align: top; white-space: nowrap; }
table.kv td { padding: 2px 0; word-break: break-word; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
         margin: 0 4px 2px 0; border: 1px solid var(--line); }
.s-COMPLETE { background: #e6f4ea; } .s-PRUNED { background: #eef0f2; }
.s-FAIL { background: #fdecea; } .s-RUNNING { background: #e8f0fe; } .s-WAITING { background: #fff8e1; }
.figure { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 16px; padding: 4px; }
.figure .plot { width: 100%; min-height: 300px; }
.figure .error { color: #b00020; padding: 8px; }
.controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 6px 0 8px; }
.controls input[type=search] { padding: 4px 8px; min-width: 260px; border: 1px solid var(--line);
                               border-radius: 4px; }
.controls select, .controls button { padding: 3px 8px; border: 1px solid var(--line);
                                     border-radius: 4px; background: #fff; cursor: pointer; }
.controls button:disabled { cursor: default; opacity: 0.4; }
.tablewrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table.trials { border-collapse: collapse; width: 100%; font-size: 13px; }
table.trials th { position: sticky; top: 0; background: var(--bg); text-align: left;
                  padding: 5px 8px; border-bottom: 1px solid var(--line); cursor: pointer;
                  white-space: nowrap; user-select: none; }
table.trials th[aria-sort=ascending]::after { content: " \\25B2"; font-size: 10px; }
table.trials th[aria-sort=descending]::after { content: " \\25BC"; font-size: 10px; }
table.trials td { padding: 3px 8px; border-bottom: 1px solid #f0f2f4; white-space: nowrap;
                  max-width: 420px; overflow: hidden; text-overflow: ellipsis; }
table.trials td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.trials tr.best td { font-weight: 600; }
.muted { color: var(--muted); }
footer { color: var(--muted); padding: 12px 28px 30px; font-size: 12px; }
"""

JS = r"""
(function () {
  "use strict";
  var report = window.tunefleetReport = { errors: [], rendered: [], ready: false, timings: {} };
  function json(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // ---- figures: drawn one after another, yielding so the page stays responsive ----
  function nextFrame() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }
  async function drawFigures() {
    var figures = json("tf-figures") || {};
    var config = { responsive: true, displaylogo: false };
    for (var name in figures) {
      var div = document.querySelector('[data-figure="' + name + '"]');
      if (!div) continue;
      try {
        var fig = figures[name];
        var cfg = Object.assign({}, config, { toImageButtonOptions: { filename: name } });
        var t0 = performance.now();
        await Plotly.newPlot(div, fig.data, fig.layout, cfg);
        report.timings[name] = Math.round(performance.now() - t0);
        report.rendered.push(name);
        if (report.rendered.length === 1) {
          report.timings.first = Math.round(performance.now());
          document.body.setAttribute("data-open", "1");
        }
      } catch (e) {
        report.errors.push(name + ": " + e);
        div.innerHTML = "";
        var p = document.createElement("p");
        p.className = "error";
        p.textContent = "This figure could not be drawn: " + e;
        div.appendChild(p);
      }
      await nextFrame();
    }
  }

  // ---- the trials table: sortable, filterable, paginated ----
  function Table(spec) {
    this.columns = spec.columns;
    this.rows = spec.rows;
    this.best = new Set(spec.best || []);
    this.sortCol = 0; this.sortDir = 1;
    this.filter = ""; this.state = "";
    this.page = 0; this.pageSize = 50;
    this.view = this.rows.slice();
    this.el = {
      head: document.getElementById("trials-head"),
      body: document.getElementById("trials-body"),
      info: document.getElementById("trials-info"),
      page: document.getElementById("trials-page"),
      search: document.getElementById("trials-search"),
      stateSel: document.getElementById("trials-state"),
      size: document.getElementById("trials-size"),
      first: document.getElementById("trials-first"),
      prev: document.getElementById("trials-prev"),
      next: document.getElementById("trials-next"),
      last: document.getElementById("trials-last"),
    };
    this.header();
    this.bind();
    this.update();
  }
  Table.prototype.header = function () {
    var self = this, tr = document.createElement("tr");
    this.columns.forEach(function (col, i) {
      var th = document.createElement("th");
      th.textContent = col.name;
      th.title = "sort by " + col.name;
      th.setAttribute("aria-sort", i === self.sortCol ? "ascending" : "none");
      th.addEventListener("click", function () { self.sortBy(i); });
      tr.appendChild(th);
    });
    this.el.head.appendChild(tr);
  };
  Table.prototype.bind = function () {
    var self = this, el = this.el, timer = null;
    el.search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { self.filter = el.search.value.toLowerCase(); self.page = 0; self.update(); }, 150);
    });
    el.stateSel.addEventListener("change", function () { self.state = el.stateSel.value; self.page = 0; self.update(); });
    el.size.addEventListener("change", function () { self.pageSize = +el.size.value; self.page = 0; self.draw(); });
    el.first.addEventListener("click", function () { self.go(0); });
    el.prev.addEventListener("click", function () { self.go(self.page - 1); });
    el.next.addEventListener("click", function () { self.go(self.page + 1); });
    el.last.addEventListener("click", function () { self.go(Infinity); });
  };
  Table.prototype.pages = function () { return Math.max(1, Math.ceil(this.view.length / this.pageSize)); };
  Table.prototype.go = function (page) { this.page = Math.max(0, Math.min(page, this.pages() - 1)); this.draw(); };
  Table.prototype.sortBy = function (i) {
    this.sortDir = this.sortCol === i ? -this.sortDir : 1;
    this.sortCol = i;
    var ths = this.el.head.querySelectorAll("th"), self = this;
    ths.forEach(function (th, k) {
      th.setAttribute("aria-sort", k === i ? (self.sortDir > 0 ? "ascending" : "descending") : "none");
    });
    this.page = 0;
    this.update();
  };
  Table.prototype.update = function () {
    var f = this.filter, st = this.state, stateCol = this.columns.findIndex(function (c) { return c.type === "state"; });
    this.view = this.rows.filter(function (row) {
      if (st && String(row[stateCol]).split(" ")[0] !== st) return false;
      if (!f) return true;
      for (var k = 0; k < row.length; k++) {
        if (row[k] !== null && String(row[k]).toLowerCase().indexOf(f) !== -1) return true;
      }
      return false;
    });
    var c = this.sortCol, d = this.sortDir, numeric = this.columns[c].type === "num" || this.columns[c].type === "int";
    this.view.sort(function (a, b) {
      var x = a[c], y = b[c];
      if (x === null || x === undefined) return (y === null || y === undefined) ? a[0] - b[0] : 1;
      if (y === null || y === undefined) return -1;
      if (numeric && typeof x === "number" && typeof y === "number") return d * (x - y) || a[0] - b[0];
      x = String(x); y = String(y);
      return d * (x < y ? -1 : x > y ? 1 : 0) || a[0] - b[0];
    });
    this.draw();
  };
  function fmt(value, type) {
    if (value === null || value === undefined) return "";
    if (type === "num" && typeof value === "number") {
      var a = Math.abs(value);
      return (a !== 0 && (a < 1e-4 || a >= 1e6)) ? value.toExponential(4) : String(+value.toPrecision(6));
    }
    return String(value);
  }
  Table.prototype.draw = function () {
    var start = this.page * this.pageSize, end = Math.min(start + this.pageSize, this.view.length);
    var body = document.createDocumentFragment(), cols = this.columns;
    for (var r = start; r < end; r++) {
      var row = this.view[r], tr = document.createElement("tr");
      if (this.best.has(row[0])) tr.className = "best";
      for (var k = 0; k < cols.length; k++) {
        var td = document.createElement("td"), text = fmt(row[k], cols[k].type);
        if (cols[k].type === "num" || cols[k].type === "int") td.className = "num";
        if (cols[k].type === "state") {
          var span = document.createElement("span");
          span.className = "badge s-" + String(row[k]).split(" ")[0];
          span.textContent = text;
          td.appendChild(span);
        } else {
          td.textContent = text;
          if (text.length > 40) td.title = text;
        }
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    this.el.body.replaceChildren(body);
    var total = this.rows.length, n = this.view.length;
    this.el.info.textContent = n ? ("trials " + (start + 1) + "\u2013" + end + " of " + n +
      (n !== total ? " (filtered from " + total + ")" : "")) : "no trial matches";
    this.el.page.textContent = "page " + (this.page + 1) + " / " + this.pages();
    this.el.first.disabled = this.el.prev.disabled = this.page === 0;
    this.el.next.disabled = this.el.last.disabled = this.page >= this.pages() - 1;
  };

  // The table is set up at once (this script runs before plotly.js is parsed); the
  // figures are drawn by drawFigures(), called from a script placed after plotly.js.
  report.timings.start = Math.round(performance.now());
  try {
    var spec = json("tf-trials");
    if (spec) report.table = new Table(spec);
  } catch (e) {
    report.errors.push("table: " + e);
  }
  report.timings.table = Math.round(performance.now());
  report.drawFigures = function () {
    report.timings.plotly = Math.round(performance.now());
    if (typeof Plotly === "undefined") {
      report.errors.push("plotly.js did not load");
      document.body.setAttribute("data-ready", "1");
      return;
    }
    drawFigures().catch(function (e) { report.errors.push(String(e)); }).then(function () {
      report.timings.ready = Math.round(performance.now());
      if (report.timings.first === undefined) {  // nothing to draw
        report.timings.first = report.timings.ready;
        document.body.setAttribute("data-open", "1");
      }
      report.ready = true;
      document.body.setAttribute("data-ready", "1");
    });
  };
})();
"""
