// gantry dashboard. Every string that comes from a request (paths, user agents,
// sources) is attacker-controlled: it goes into the page through textContent only.
"use strict";
(function () {
  var csrf = "";

  // ---- helpers --------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function api(path, opts) {
    opts = opts || {};
    opts.credentials = "same-origin";
    opts.headers = Object.assign({ "X-CSRF-Token": csrf }, opts.headers || {});
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { location.href = "/login"; throw new Error("login required"); }
      return r.json().then(function (b) { if (!r.ok && !b.error) b.error = r.statusText; return b; });
    });
  }
  function fmtNum(n, digits) {
    if (n === undefined || n === null || isNaN(n)) return "–";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return Number(n).toFixed(digits || 0);
  }
  // fmtDur says a duration in seconds as a person would: "45 s", "5 min",
  // "2 h 5 min", "3 d 4 h".
  function fmtDur(s) {
    s = Math.max(0, Math.round(s || 0));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + " d" + (h ? " " + h + " h" : "");
    if (h) return h + " h" + (m ? " " + m + " min" : "");
    if (m) return m + " min";
    return s + " s";
  }
  function fmtTime(t) {
    if (!t) return "";
    var d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 1971) return "";
    return d.toLocaleTimeString();
  }
  function fmtBytes(kb) { return kb ? (kb / 1024).toFixed(1) + " MB" : "–"; }
  function fill(tbody, rows, cols, empty) {
    tbody.replaceChildren();
    if (!rows.length) {
      var tr = el("tr"), td = el("td", empty || "nothing yet", "empty");
      td.colSpan = cols; tr.appendChild(td); tbody.appendChild(tr); return;
    }
    rows.forEach(function (r) { tbody.appendChild(r); });
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (c) {
      if (c instanceof Node) { var td = el("td"); td.appendChild(c); tr.appendChild(td); }
      else if (c && typeof c === "object") { tr.appendChild(el("td", c.text, c.cls)); }
      else tr.appendChild(el("td", c));
    });
    return tr;
  }
  // where is "NL AS64500 Example BV" from the report's GeoIP fields, or "".
  function where(x) { return [x.country || "", x.asn ? "AS" + x.asn + (x.as_org ? " " + x.as_org : "") : ""].join(" ").trim(); }
  function tag(cat, text) { return cat ? el("span", text || cat, "tag " + cat) : el("span", ""); }
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  // ---- theme ----------------------------------------------------------------
  function setTheme(t) {
    document.documentElement.dataset.theme = t;
    try { localStorage.setItem("gantry-theme", t); } catch (e) {}
    $("theme").textContent = t === "dark" ? "◑ light" : "◐ dark";
    buildCharts();
  }
  $("theme").addEventListener("click", function () {
    setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
  });

  // ---- tabs -----------------------------------------------------------------
  var current = "overview";
  document.querySelectorAll(".tabs button").forEach(function (b) {
    b.addEventListener("click", function () { showTab(b.dataset.tab); });
  });
  function showTab(name) {
    current = name;
    document.querySelectorAll(".tabs button").forEach(function (b) {
      b.setAttribute("aria-selected", String(b.dataset.tab === name));
    });
    document.querySelectorAll(".tab").forEach(function (s) { s.hidden = s.id !== "tab-" + name; });
    if (name === "overview") resizeCharts();
    if (name === "telescope") loadTelescope();
    if (name === "config") loadConfig();
    if (name === "log") renderLog();
    history.replaceState(null, "", "#" + name);
  }

  // ---- charts ---------------------------------------------------------------
  // The graphs show a range of the history (/api/history?range=): 5 min and 1 h
  // at one point a second, followed live; 24 h and 7 days at one a minute,
  // fetched again every minute. Data are columns, as uPlot takes them.
  var RANGES = { "5m": 300, "1h": 3600, "24h": 86400, "7d": 604800 };
  var range = "5m", hist = { t: [], series: {}, off: {} }, zoom = null;
  var charts = {};
  var chartDefs = {
    "chart-requests": { series: [["2xx", "--s2xx"], ["3xx", "--s3xx"], ["4xx", "--s4xx"], ["5xx", "--s5xx"]] },
    "chart-latency": { series: [["p50_ms", "--accent", "p50"], ["p99_ms", "--s5xx", "p99"]], latency: true },
    "chart-bytes": { series: [["bytes_in", "--s1xx", "in"], ["bytes_out", "--s2xx", "out"]], bytes: true },
    "chart-unsolicited": { series: [["unsolicited", "--s4xx"], ["dark", "--s1xx", "dark ports"]], off: ["unsolicited", "dark"] },
    "chart-packets": { series: [["backscatter", "--s5xx"], ["scan", "--s4xx"], ["other", "--muted"]], off: ["packets"] }
  };
  // sampleFields turns an event-stream sample into the history's columns.
  function sampleFields(s) {
    var r = s.requests || {}, p = s.packets || {};
    return { rps: s.rps, "1xx": r["1xx"] || 0, "2xx": r["2xx"] || 0, "3xx": r["3xx"] || 0, "4xx": r["4xx"] || 0, "5xx": r["5xx"] || 0,
      p50_ms: s.p50_ms, p99_ms: s.p99_ms, unsolicited: s.unsolicited, dark: s.dark, backscatter: p.backscatter || 0,
      scan: p.scan || 0, other: p.other || 0, in_flight: s.in_flight || 0, bytes_in: s.bytes_in || 0, bytes_out: s.bytes_out || 0 };
  }
  function logScale() { return $("lat-log").checked; }
  function chartData(id) {
    var def = chartDefs[id], log = def.latency && logScale();
    return [hist.t].concat(def.series.map(function (sd) {
      var col = hist.series[sd[0]] || [];
      // a log scale has no zero: a second without requests is a gap
      return log ? col.map(function (v) { return v > 0 ? v : null; }) : col;
    }));
  }
  // whole seconds and up: a tick between two seconds would repeat a label
  var TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  // xLabels formats the time axis for the tick spacing uPlot found, and keeps
  // what it drew on the chart's element, so that a test can check for overlap.
  function xLabels(id) {
    return function (u, splits, axisIdx, space, incr) {
      var out = splits.map(function (v) {
        var d = new Date(v * 1000);
        var midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0;
        // days, and on an hourly axis each midnight, are named by their date
        if (incr >= 86400 || (incr >= 3600 && midnight)) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
        var hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
        return incr < 60 ? hm + ":" + pad2(d.getSeconds()) : hm;
      });
      $(id).dataset.xlabels = JSON.stringify(out.map(function (l, i) { return [l, Math.round(u.valToPos(splits[i], "x"))]; }));
      return out;
    };
  }
  function fmtAxis(def) {
    return function (u, splits) {
      return splits.map(function (v) {
        if (v === null || v === undefined) return "";
        if (def.bytes) return fmtBytesN(v);
        return Math.abs(v) >= 1000 ? fmtNum(v) : String(+v.toFixed(3));
      });
    };
  }
  function buildCharts() {
    Object.keys(chartDefs).forEach(function (id) {
      var def = chartDefs[id], box = $(id);
      if (charts[id]) { charts[id].destroy(); }
      var axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
      var log = def.latency && logScale();
      // a floor for the top of the scale, so that an idle chart's ticks are round numbers
      var floor = def.bytes ? 1000 : 1;
      var y = log ? { distr: 3, log: 10 } : { range: function (u, min, max) { return [0, Math.max(max, floor)]; } };
      charts[id] = new uPlot({
        width: Math.max(box.clientWidth, 280), height: 200,
        series: [{}].concat(def.series.map(function (sd) {
          return { label: sd[2] || sd[0], stroke: css(sd[1]), width: 1.5, points: { show: false }, spanGaps: false };
        })),
        axes: [Object.assign({ space: 90, incrs: TIME_INCRS, values: xLabels(id) }, axis),
          Object.assign({ size: 56, space: 30, values: fmtAxis(def) }, axis)],
        scales: { x: { time: true }, y: y },
        cursor: { drag: { x: true, y: false, setScale: false } },
        hooks: { setSelect: [function (u) {
          if (u.select.width < 5) return;
          setZoom([u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x")]);
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        }] },
        legend: { live: false }
      }, chartData(id), box);
      box.dataset.log = log ? "1" : "0";
      showOff(id);
    });
    if (zoom) setZoom(zoom);
  }
  // showOff names, over a chart with nothing to show, the source that is off.
  function showOff(id) {
    var def = chartDefs[id], fig = $(id).parentNode, old = fig.querySelector(".chart-off");
    var why = (def.off || []).map(function (k) { return hist.off && hist.off[k]; }).filter(Boolean);
    // dark ports alone off: the unsolicited requests still show
    if (id === "chart-unsolicited" && why.length === 1 && hist.off && hist.off.dark) why = [];
    if (old) old.remove();
    if (why.length) fig.appendChild(el("p", why.join("; "), "chart-off"));
  }
  function setZoom(z) {
    zoom = z;
    $("zoom-reset").hidden = !z;
    $("charts").dataset.zoomed = z ? "1" : "0";
    Object.keys(charts).forEach(function (id) {
      var u = charts[id];
      if (z) u.setScale("x", { min: z[0], max: z[1] });
      else u.setData(chartData(id), true);
    });
  }
  $("zoom-reset").addEventListener("click", function () { setZoom(null); });
  $("lat-log").addEventListener("change", buildCharts);
  function resizeCharts() {
    Object.keys(charts).forEach(function (id) {
      var w = $(id).clientWidth;
      if (w > 0) charts[id].setSize({ width: w, height: 200 });
    });
  }
  window.addEventListener("resize", resizeCharts);
  function updateCharts() {
    Object.keys(chartDefs).forEach(function (id) {
      charts[id].setData(chartData(id), !zoom);
      $(id).dataset.samples = String(hist.t.length);
    });
  }
  function loadRange(r) {
    return api("/api/history?range=" + r).then(function (h) {
      if (h.error) throw new Error(h.error);
      range = r;
      hist = { t: h.t || [], series: h.series || {}, off: h.off || {} };
      zoom = null;
      document.querySelectorAll("#range button").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.range === r)); });
      $("charts").dataset.range = r;
      buildCharts();
      updateCharts();
    });
  }
  document.querySelectorAll("#range button").forEach(function (b) {
    b.addEventListener("click", function () { loadRange(b.dataset.range).catch(function (e) { console.error(e); }); });
  });
  // appendSample follows the live stream on the ranges kept at one second.
  function appendSample(s) {
    if (RANGES[range] > 3600) return;
    var f = sampleFields(s), from = s.t / 1000 - RANGES[range];
    hist.t.push(s.t / 1000);
    Object.keys(f).forEach(function (k) { (hist.series[k] = hist.series[k] || []).push(f[k]); });
    var drop = 0;
    while (drop < hist.t.length && hist.t[drop] < from) drop++;
    if (drop) {
      hist.t.splice(0, drop);
      Object.keys(hist.series).forEach(function (k) { hist.series[k].splice(0, drop); });
    }
    // a series the stream does not send must stay as long as the time column
    Object.keys(hist.series).forEach(function (k) { while (hist.series[k].length < hist.t.length) hist.series[k].push(null); });
    updateCharts();
  }

  // ---- live samples ---------------------------------------------------------
  // The tiles show the last second and, under it, the mean of the last ten.
  var recent = [];
  function fmtBytesN(n) {
    if (!n) return "0 B";
    var u = ["B", "kB", "MB", "GB"], i = 0;
    while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
  }
  function mean(f) {
    var sum = 0;
    recent.forEach(function (s) { sum += f(s) || 0; });
    return recent.length ? sum / recent.length : 0;
  }
  // wmean is the mean of f over the last seconds weighted by their requests: a
  // latency of a second without requests is no latency of 0 ms (undefined: "–").
  function wmean(f) {
    var sum = 0, n = 0;
    recent.forEach(function (s) { var w = s.rps || 0; if (w > 0) { sum += (f(s) || 0) * w; n += w; } });
    return n ? sum / n : undefined;
  }
  function pk(s) { var p = s.packets || {}; return (p.backscatter || 0) + (p.scan || 0) + (p.other || 0); }
  function tile(id, now, avg) {
    $(id).textContent = now;
    $(id + "-avg").textContent = "10 s avg " + avg;
  }
  function onSample(s) {
    recent.push(s);
    if (recent.length > 10) recent.shift();
    appendSample(s);
    tile("c-rps", fmtNum(s.rps, 1), fmtNum(mean(function (x) { return x.rps; }), 1));
    tile("c-inflight", fmtNum(s.in_flight || 0), fmtNum(mean(function (x) { return x.in_flight; }), 1));
    tile("c-latency", fmtNum(s.p50_ms, 1) + " / " + fmtNum(s.p99_ms, 1) + " ms",
      fmtNum(wmean(function (x) { return x.p50_ms; }), 1) + " / " + fmtNum(wmean(function (x) { return x.p99_ms; }), 1) + " ms");
    tile("c-5xx", fmtNum((s.requests || {})["5xx"], 1), fmtNum(mean(function (x) { return (x.requests || {})["5xx"]; }), 1));
    tile("c-bytes", fmtBytesN(s.bytes_in) + " / " + fmtBytesN(s.bytes_out),
      fmtBytesN(mean(function (x) { return x.bytes_in; })) + " / " + fmtBytesN(mean(function (x) { return x.bytes_out; })));
    $("c-aborted").textContent = fmtNum(s.aborted || 0);
    tile("c-unsolicited", fmtNum(s.unsolicited, 1), fmtNum(mean(function (x) { return x.unsolicited; }), 1));
    tile("c-dark", fmtNum(s.dark, 1), fmtNum(mean(function (x) { return x.dark; }), 1));
    tile("c-packets", fmtNum(pk(s), 1), fmtNum(mean(pk), 1));
    showAlerts(s.alerts || []);
  }
  function connectEvents() {
    var es = new EventSource("/api/events");
    es.onopen = function () { $("live").classList.add("on"); };
    es.onerror = function () { $("live").classList.remove("on"); };
    es.onmessage = function (m) { try { onSample(JSON.parse(m.data)); } catch (e) { console.error(e); } };
  }
  // A dismissed alert stays hidden for as long as that occurrence lasts (same id
  // and since); once the condition ends its entry is dropped, so a new occurrence
  // shows again.
  var DISMISSED = "gantry-dismissed-alerts";
  var ALERT_NAMES = { crash_loop: "crash loop", "5xx_burst": "5xx burst", attack: "attack", certificate: "certificate", saturated: "pool saturated" };
  function dismissed() {
    try { return JSON.parse(localStorage.getItem(DISMISSED) || "{}") || {}; } catch (e) { return {}; }
  }
  function saveDismissed(m) { try { localStorage.setItem(DISMISSED, JSON.stringify(m)); } catch (e) {} }
  var lastAlerts = [];
  function poolRow(p, cells) {
    var tr = row(cells);
    tr.dataset.pool = p.site + " " + p.route;
    return tr;
  }
  function showPool(key) {
    showTab("overview");
    var rows = Array.from(document.querySelectorAll("#pools tbody tr")).filter(function (tr) { return tr.dataset.pool === key; });
    var target = rows[0] || $("pools");
    target.scrollIntoView({ block: "center" });
    rows.forEach(function (tr) {
      tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
    });
  }
  function showAlerts(list) {
    lastAlerts = list;
    var box = $("alerts"), gone = dismissed(), keep = {};
    box.replaceChildren();
    list.forEach(function (a) {
      var since = String(a.since);
      if (gone[a.id] === since) { keep[a.id] = since; return; }
      var d = el("div", null, "alert alert-" + a.kind);
      d.dataset.id = a.id;
      var text = el("div", null, "alert-text");
      text.appendChild(el("b", ALERT_NAMES[a.kind] || a.kind));
      text.appendChild(document.createTextNode(a.message + " (since " + fmtTime(a.since) + ")"));
      if (a.detail) text.appendChild(el("code", a.detail, "alert-detail"));
      if (a.pool) {
        var link = el("a", "show the pool", "alert-link");
        link.href = "#overview";
        link.addEventListener("click", function (e) { e.preventDefault(); showPool(a.pool); });
        text.appendChild(link);
      }
      d.appendChild(text);
      var x = el("button", "dismiss", "alert-dismiss");
      x.type = "button";
      x.setAttribute("aria-label", "dismiss this alert until it happens again");
      x.addEventListener("click", function () {
        var m = dismissed();
        m[a.id] = since;
        saveDismissed(m);
        showAlerts(lastAlerts);
      });
      d.appendChild(x);
      box.appendChild(d);
    });
    // Forget the dismissals of conditions that have ended.
    if (Object.keys(gone).length !== Object.keys(keep).length) saveDismissed(keep);
  }

  // ---- status ---------------------------------------------------------------
  function loadStatus() {
    return Promise.all([api("/api/status"), api("/api/routes")]).then(function (res) {
      var st = res[0], routes = res[1] || [];
      $("version").textContent = st.version || "";
      $("c-uptime").textContent = fmtDur(st.uptime_s || 0);
      $("c-requests").textContent = fmtNum(st.requests_total);
      showRoutes(routes);
      showPools(st.pools || [], routes);
      var srow = [];
      (st.sites || []).forEach(function (s) {
        (s.routes || []).forEach(function (r) {
          srow.push(row([s.name, (s.hosts || []).join(" ") || "(any)", r.path, r.kind, r.target]));
        });
      });
      fill($("sites").tBodies[0], srow, 5);
      showCerts(st.certificates || []);
    }).catch(function () {});
  }

  // ---- routes and pools -----------------------------------------------------
  var routeRows = [], routeSort = { key: "rps", type: "num", dir: -1 };
  function spark(values) {
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), line = document.createElementNS(ns, "polyline");
    var w = 120, h = 22, top = Math.max.apply(null, values.concat([1e-9]));
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "requests/s over the last minute");
    line.setAttribute("points", values.map(function (v, i) {
      var x = values.length > 1 ? i * w / (values.length - 1) : 0;
      return x.toFixed(1) + "," + (h - 1 - v / top * (h - 2)).toFixed(1);
    }).join(" "));
    svg.appendChild(line);
    return svg;
  }
  function pct(x) { return x ? (x * 100).toFixed(x < 0.01 ? 2 : 1) + "%" : "0%"; }
  function showRoutes(list) { routeRows = list; renderRoutes(); }
  function renderRoutes() {
    fill($("routes").tBodies[0], sortRows(routeRows, routeSort).map(function (r) {
      var tr = row([r.site, r.route, fmtNum(r.rps, 2), { text: pct(r.error_rate), cls: r.error_rate > 0 ? "st5" : "" },
        fmtNum(r.p50_ms, 1), fmtNum(r.p99_ms, 1), fmtNum(r.total), spark(r.spark || [])]);
      tr.dataset.route = r.route;
      return tr;
    }), 8, "no requests yet");
  }
  sortable($("routes"), routeSort, renderRoutes);
  // showPools: one line per pool (busy, idle, queue, time per request, the
  // requests each worker took), then one per worker.
  function showPools(pools, routes) {
    var avg = {};
    routes.forEach(function (r) { avg[r.site + "\u0000" + r.route] = r; });
    var srow = [], prow = [];
    pools.forEach(function (p) {
      var ws = p.workers || [], busy = 0, idle = 0, most = 1;
      ws.forEach(function (w) {
        if (w.state !== "ready") return;
        if (w.inflight > 0) busy++; else idle++;
        most = Math.max(most, w.requests);
      });
      var bars = el("span", null, "bars");
      ws.forEach(function (w) {
        var b = el("span", null, "bar"), i = el("i");
        i.style.width = Math.round(60 * w.requests / most) + "px";
        b.title = "pid " + w.pid + ": " + w.requests + " requests";
        b.appendChild(i); b.appendChild(document.createTextNode(fmtNum(w.requests)));
        bars.appendChild(b);
      });
      var r = avg[p.site + "\u0000" + p.route];
      srow.push(poolRow(p, [p.site, p.route, p.kind, fmtNum(busy), fmtNum(idle), { text: fmtNum(p.queued || 0), cls: p.queued > 0 ? "st4" : "" },
        r && r.total ? fmtNum(r.avg_ms, 1) : "–", bars]));
      ws.forEach(function (w) {
        prow.push(poolRow(p, [p.site, p.route, p.kind, w.pid, { text: w.state, cls: "state-" + w.state }, w.inflight > 0 ? "busy" : "idle",
          fmtNum(w.requests), { text: fmtNum(w.errors || 0), cls: w.errors > 0 ? "st5" : "" }, fmtBytes(w.rss_kb), fmtTime(w.started), { text: w.restarts, cls: w.restarts > 0 ? "st4" : "" }]));
      });
      if (!ws.length) prow.push(poolRow(p, [p.site, p.route, p.kind, "–", { text: "no workers", cls: "st5" }, "", "", "", "", "", ""]));
    });
    $("pool-note").hidden = !pools.length;
    fill($("pool-summary").tBodies[0], srow, 8, "no worker pools (wsgi and fastcgi_command routes have them)");
    fill($("pools").tBodies[0], prow, 11, "no worker processes");
  }

  // ---- top lists ------------------------------------------------------------
  function loadTops() {
    api("/api/top").then(function (t) {
      [["top-urls", t.urls], ["top-404", t.not_found], ["top-clients", t.clients]].forEach(function (x) {
        fill($(x[0]).tBodies[0], (x[1] || []).map(function (e) {
          var tr = row([{ text: e.key, cls: "wide" }, (e.error ? "≤ " : "") + fmtNum(e.count)]);
          if (e.error) tr.title = "counted since it replaced a rarer entry: between " + (e.count - e.error) + " and " + e.count;
          return tr;
        }), 2, "nothing in the last hour");
      });
    }).catch(function () {});
  }

  // ---- certificates ---------------------------------------------------------
  var DAY = 86400000;
  function fmtLeft(ms) {
    var a = Math.abs(ms), n = a >= DAY ? Math.floor(a / DAY) + " d" : Math.floor(a / 3600000) + " h";
    return ms < 0 ? "expired " + n + " ago" : "in " + n;
  }
  function certTime(t) {
    var d = t ? new Date(t) : null;
    return d && !isNaN(d) && d.getFullYear() > 1970 ? d : null;
  }
  // A certificate is near expiry once it is in its renewal window (the last
  // third of its life, when gantry renews) and still not renewed, or with under
  // a week left when its start is unknown.
  function certState(c, now) {
    var nb = certTime(c.not_before), na = certTime(c.not_after);
    if (c.last_error || (na && na <= now)) return "bad";
    if (!na) return "pending";
    var left = na - now, life = nb ? na - nb : 0;
    if (life > 0 ? left < life / 3 : left < 7 * DAY) return "warn";
    return "ok";
  }
  function showCerts(list) {
    $("certs-panel").hidden = !list.length;
    var now = new Date();
    fill($("certs").tBodies[0], list.map(function (c) {
      var na = certTime(c.not_after), state = certState(c, now), at = certTime(c.last_attempt);
      var tr = row([c.name, c.source, c.issuer || "–",
        na ? na.toLocaleString() + " (" + fmtLeft(na - now) + ")" : (c.last_error ? "no certificate" : "obtaining…"),
        at ? at.toLocaleString() : "–", { text: c.last_error || "", cls: "wide" }]);
      tr.className = "cert-" + state;
      tr.dataset.name = c.name;
      return tr;
    }), 6);
  }

  // ---- access log -----------------------------------------------------------
  var logRows = [], lastSeq = 0, logPage = 0;
  var logSort = { key: "time", type: "time", dir: -1 };
  function pollLog() {
    if ($("log-pause").checked) return;
    api("/api/log?after=" + lastSeq).then(function (list) {
      if (!list.length) return;
      lastSeq = list[0].seq;
      logRows = list.concat(logRows).slice(0, 1000);
      if (current === "log") renderLog();
    }).catch(function () {});
  }
  function sortValue(r, key, type) {
    var v = r[key];
    if (type === "num") return Number(v) || 0;
    if (type === "time") return new Date(v).getTime() || r.seq || 0;
    return String(v || "").toLowerCase();
  }
  function sortRows(rows, s) {
    return rows.slice().sort(function (a, b) {
      var x = sortValue(a, s.key, s.type), y = sortValue(b, s.key, s.type);
      if (x < y) return -s.dir;
      if (x > y) return s.dir;
      return (b.seq || 0) - (a.seq || 0);
    });
  }
  function renderLog() {
    var f = $("log-filter").value.trim().toLowerCase(), uns = $("log-unsolicited").checked;
    var rows = logRows.filter(function (r) {
      if (uns && !r.category) return false;
      if (!f) return true;
      return [r.uri, r.remote, r.method, r.status, r.host, r.site, r.category, r.rule, r.user_agent]
        .join(" ").toLowerCase().indexOf(f) >= 0;
    });
    rows = sortRows(rows, logSort);
    var size = parseInt($("log-size").value, 10), pages = Math.max(1, Math.ceil(rows.length / size));
    logPage = Math.min(logPage, pages - 1);
    var page = rows.slice(logPage * size, (logPage + 1) * size);
    fill($("log").tBodies[0], page.map(function (r) {
      var tr = row([fmtTime(r.time), r.remote, r.method, { text: r.uri, cls: "wide" },
        { text: r.status, cls: "st" + Math.floor(r.status / 100) }, fmtNum(r.bytes), fmtNum(r.duration_ms, 1),
        r.site || "–", tag(r.category)]);
      tr.title = (r.user_agent || "") + (r.rule ? "  [" + r.rule + "]" : "");
      return tr;
    }), 9, "no requests yet");
    $("log-page").textContent = "page " + (logPage + 1) + " of " + pages + " (" + rows.length + " requests)";
    $("log-prev").disabled = logPage === 0;
    $("log-next").disabled = logPage >= pages - 1;
  }
  function sortable(table, state, render) {
    table.querySelectorAll("th[data-key]").forEach(function (th) {
      th.addEventListener("click", function () {
        if (state.key === th.dataset.key) state.dir = -state.dir;
        else { state.key = th.dataset.key; state.type = th.dataset.type || "str"; state.dir = state.type === "str" ? 1 : -1; }
        table.querySelectorAll("th").forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
        render();
      });
    });
  }
  sortable($("log"), logSort, function () { logPage = 0; renderLog(); });
  ["log-filter", "log-unsolicited", "log-size"].forEach(function (id) {
    $(id).addEventListener("input", function () { logPage = 0; renderLog(); });
  });
  $("log-prev").addEventListener("click", function () { logPage = Math.max(0, logPage - 1); renderLog(); });
  $("log-next").addEventListener("click", function () { logPage++; renderLog(); });

  // ---- telescope ------------------------------------------------------------
  var srcRows = [], srcSort = { key: "requests", type: "num", dir: -1 };
  function renderSources() {
    fill($("t-sources").tBodies[0], sortRows(srcRows, srcSort).map(function (s) {
      var cats = el("span");
      Object.keys(s.categories || {}).forEach(function (c) {
        cats.appendChild(tag(c)); cats.appendChild(document.createTextNode(" " + s.categories[c] + " "));
      });
      return row([s.source, fmtNum(s.requests), cats, fmtTime(s.last), { text: (s.sample_paths || []).join("  ·  "), cls: "wide" }]);
    }), 5, "no unsolicited requests yet");
  }
  sortable($("t-sources"), srcSort, renderSources);
  function loadBans() {
    api("/api/bans").then(function (b) {
      $("b-note").textContent = b.enabled ? (b.stats.active + " active, " + b.stats.refused + " connections refused") : "off: set [telescope.ban] enabled = true";
      var now = Date.now();
      fill($("bans").tBodies[0], (b.bans || []).map(function (e) {
        var btn = el("button", "unban");
        btn.dataset.source = e.source;
        btn.addEventListener("click", function () { unban(e.source); });
        return row([e.source, e.rule, { text: e.sample, cls: "wide" }, fmtTime(e.since),
          fmtDur(Math.max(0, (new Date(e.until) - now) / 1000)), fmtNum(e.strikes), fmtNum(e.refused), btn]);
      }), 8, b.enabled ? "no source banned" : "bans are off");
    }).catch(function () {});
  }
  function unban(source) {
    var out = $("b-result");
    api("/api/bans", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action: "unban", source: source }) }).then(function (r) {
      out.textContent = r.ok ? "unbanned " + source : "unban failed: " + r.error;
      loadBans();
    }).catch(function (e) { out.textContent = "unban failed: " + e; });
  }

  // The latest unsolicited requests: ten, and fifty after "show more".
  var recentRows = [], recentAll = false;
  function renderRecent() {
    fill($("t-recent").tBodies[0], recentRows.slice(0, recentAll ? 50 : 10).map(function (e) {
      return row([fmtTime(e.time), e.source, tag(e.category), e.rule, { text: (e.method ? e.method + " " : "") + e.target, cls: "wide" }]);
    }), 5);
    var more = $("t-recent-more");
    more.hidden = recentRows.length <= 10;
    more.textContent = recentAll ? "show fewer" : "show more (" + Math.min(recentRows.length, 50) + ")";
  }
  $("t-recent-more").addEventListener("click", function () { recentAll = !recentAll; renderRecent(); });
  function fmtSecs(s) { return s >= 3600 && s % 3600 === 0 ? s / 3600 + " h" : s >= 60 && s % 60 === 0 ? s / 60 + " min" : s + " s"; }
  // thresholds says, in words, what the report calls a scan and an attack.
  function thresholds(p) {
    var t = p.thresholds || {};
    return "A scan is one source probing at least " + t.scan_hosts + " addresses or " + t.scan_ports + " ports, ended after " +
      fmtSecs(t.scan_idle_s) + " without a probe. An attack is backscatter from one victim of at least " + t.dos_packets +
      " packets over at least " + fmtSecs(t.dos_duration_s) + ", with " + t.dos_ppm + " in its busiest minute, ended after " +
      fmtSecs(t.dos_idle_s) + " without any." + (p.telescope_size > 0 ? " Telescope size: " + (p.telescope_size_estimated ? "about " : "") +
      fmtNum(p.telescope_size) + " addresses (" + p.size_source + ")." : "");
  }
  function loadTelescope() {
    loadBans();
    api("/api/telescope").then(function (t) {
      var cards = $("t-cards");
      cards.replaceChildren();
      function card(label, value) {
        var c = el("div", null, "card"); c.appendChild(el("span", label)); c.appendChild(el("b", value)); cards.appendChild(c);
      }
      var h = t.http;
      if (h) {
        card("unsolicited HTTP", fmtNum(h.unsolicited_total));
        ["exploit", "scanner", "probe"].forEach(function (c) { card(c, fmtNum((h.categories || {})[c])); });
        srcRows = (h.sources || []).map(function (s) { s.cats = Object.keys(s.categories || {}).join(" "); s.paths = (s.sample_paths || []).join(" "); return s; });
        renderSources();
        recentRows = h.recent || [];
        renderRecent();
        fill($("t-rules").tBodies[0], (h.rules || []).filter(function (r) { return r.count > 0; }).map(function (r) {
          return row([r.name, tag(r.category), fmtNum(r.count), { text: r.ref, cls: "wide" }]);
        }), 4, "no rule fired yet");
      }
      var d = t.dark_ports;
      if (d) card("dark-port hits", fmtNum(d.hits_total));
      fill($("t-dark").tBodies[0], ((d && d.sources) || []).map(function (s) {
        return row([s.source, s.port + "/" + s.protocol, fmtNum(s.hits), fmtTime(s.last),
          s.rule ? tag(s.category, s.rule) : "", s.detail || "", { text: s.first_bytes, cls: "wide" }]);
      }), 7, d ? "no hits yet" : "no dark ports configured ([telescope] dark_ports)");
      var x = t.export;
      if (x) {
        card("exported to ClickHouse", fmtNum(x.exported));
        card("export dropped", fmtNum(x.dropped));
      }
      var p = t.packets;
      $("t-nocapture").hidden = !!p;
      $("t-iface").textContent = t.interface ? "on " + t.interface : "";
      if (p) {
        card("packets captured", fmtNum(p.packets));
        card("backscatter packets", fmtNum(p.classes.backscatter));
        card("scan packets", fmtNum(p.classes.scan));
      }
      $("t-thresholds").textContent = p ? thresholds(p) : "";
      $("t-assumption").textContent = p ? "Internet-wide estimate: " + p.est_assumption : "";
      fill($("t-attacks").tBodies[0], ((p && p.attacks) || []).slice(-50).reverse().map(function (a) {
        var svc = (a.services || []).slice(0, 5).map(function (s) { return s.port + ":" + fmtNum(s.packets); }).join(", ") +
          (a.services_other_packets ? ", other:" + fmtNum(a.services_other_packets) : "");
        return row([a.victim, where(a), a.protocol, svc, fmtNum(a.packets), fmtDur(a.duration_s),
          fmtNum(a.mean_pps, 2) + " / " + fmtNum(a.peak_pps, 2), "~" + fmtNum(a.est_pps, 1) + " / ~" + fmtNum(a.est_peak_pps, 1),
          fmtTime(a.start), fmtTime(a.end)]);
      }), 10, "no attacks seen");
      fill($("t-scans").tBodies[0], ((p && p.scans) || []).slice(-50).reverse().map(function (s) {
        var ports = (s.ports || []).slice(0, 10).join(",") + ((s.ports || []).length > 10 ? "…" : "");
        return row([s.source, where(s), s.kind, s.protocol, ports, (s.targets_estimated ? "~" : "") + fmtNum(s.targets), fmtNum(s.packets), s.tool || "", fmtTime(s.end)]);
      }), 9, "no scans seen");
    }).catch(function () {});
  }

  // ---- config ---------------------------------------------------------------
  function showReload(r) {
    var e = $("cfg-reload");
    if (!r || !r.time || new Date(r.time).getFullYear() < 1971) { e.textContent = "none since start"; e.className = ""; return; }
    e.textContent = new Date(r.time).toLocaleString() + (r.ok ? " — ok" : " — failed: " + r.error);
    e.className = r.ok ? "ok" : "error";
  }
  function loadConfig() {
    api("/api/config").then(function (c) {
      $("cfg-file").textContent = c.file || "(no file: started from flags)";
      $("cfg-text").textContent = c.text || "";
      showReload(c.last_reload);
    }).catch(function () {});
  }
  $("reload").addEventListener("click", function () {
    var out = $("reload-result");
    out.textContent = "reloading…"; out.className = "";
    api("/api/reload", { method: "POST" }).then(function (r) {
      out.textContent = r.ok ? "reloaded" : "failed: " + r.error;
      out.className = r.ok ? "ok" : "error";
      loadConfig(); loadStatus();
    }).catch(function (e) { out.textContent = "failed: " + e.message; out.className = "error"; });
  });

  // ---- start ----------------------------------------------------------------
  $("logout").addEventListener("click", function () {
    api("/logout", { method: "POST" }).finally(function () { location.href = "/login"; });
  });
  api("/api/session").then(function (s) {
    csrf = s.csrf || "";
    $("logout").hidden = !s.login_required;
    setTheme(document.documentElement.dataset.theme || "light");
    return loadRange("5m");
  }).then(function () {
    connectEvents();
    loadStatus(); pollLog(); loadTops();
    setInterval(loadStatus, 5000);
    setInterval(loadTops, 10000);
    setInterval(function () { if (RANGES[range] > 3600 && !zoom) loadRange(range).catch(function () {}); }, 60000);
    setInterval(pollLog, 2000);
    setInterval(function () { if (current === "telescope") loadTelescope(); }, 5000);
    var want = location.hash.slice(1);
    if (want && $("tab-" + want)) showTab(want);
  }).catch(function (e) { console.error(e); });
})();
