// gantry dashboard. Every string that comes from a request (paths, user agents,
// sources) is attacker-controlled: it goes into the page through textContent only.
"use strict";
(function () {
  var csrf = "";
  var KEEP = 600; // samples on the graphs: ten minutes

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
  function fmtDur(s) {
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    return m + "m " + (s % 60) + "s";
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
  function fmtDur(s) {
    s = Math.round(s || 0);
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    return (h ? h + "h" : "") + (h || m ? m + "m" : "") + (s % 60) + "s";
  }
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
  var samples = [];
  var charts = {};
  var chartDefs = {
    "chart-requests": { series: [["2xx", "--s2xx"], ["3xx", "--s3xx"], ["4xx", "--s4xx"], ["5xx", "--s5xx"]],
      pick: function (s) { var r = s.requests || {}; return [r["2xx"] || 0, r["3xx"] || 0, r["4xx"] || 0, r["5xx"] || 0]; } },
    "chart-latency": { series: [["p50", "--accent"], ["p99", "--s5xx"]], pick: function (s) { return [s.p50_ms, s.p99_ms]; } },
    "chart-unsolicited": { series: [["unsolicited", "--s4xx"], ["dark ports", "--s1xx"]], pick: function (s) { return [s.unsolicited, s.dark]; } },
    "chart-packets": { series: [["backscatter", "--s5xx"], ["scan", "--s4xx"], ["other", "--muted"]],
      pick: function (s) { var p = s.packets || {}; return [p.backscatter || 0, p.scan || 0, p.other || 0]; } }
  };
  function chartData(def) {
    var xs = [], cols = def.series.map(function () { return []; });
    samples.forEach(function (s) {
      xs.push(s.t / 1000);
      def.pick(s).forEach(function (v, i) { cols[i].push(v); });
    });
    return [xs].concat(cols);
  }
  function buildCharts() {
    Object.keys(chartDefs).forEach(function (id) {
      var def = chartDefs[id], box = $(id);
      if (charts[id]) { charts[id].destroy(); }
      var axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
      charts[id] = new uPlot({
        width: Math.max(box.clientWidth, 280), height: 200,
        series: [{}].concat(def.series.map(function (s) {
          return { label: s[0], stroke: css(s[1]), width: 1.5, points: { show: false } };
        })),
        axes: [axis, Object.assign({ size: 50 }, axis)],
        scales: { y: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
        legend: { live: false }
      }, chartData(def), box);
    });
  }
  function resizeCharts() {
    Object.keys(charts).forEach(function (id) {
      var w = $(id).clientWidth;
      if (w > 0) charts[id].setSize({ width: w, height: 200 });
    });
  }
  window.addEventListener("resize", resizeCharts);
  function updateCharts() {
    Object.keys(chartDefs).forEach(function (id) {
      charts[id].setData(chartData(chartDefs[id]));
      $(id).dataset.samples = String(samples.length);
    });
  }

  // ---- live samples ---------------------------------------------------------
  function onSample(s) {
    samples.push(s);
    if (samples.length > KEEP) samples.shift();
    updateCharts();
    $("c-rps").textContent = fmtNum(s.rps, 1);
    $("c-latency").textContent = fmtNum(s.p50_ms, 1) + " / " + fmtNum(s.p99_ms, 1) + " ms";
    $("c-5xx").textContent = fmtNum((s.requests || {})["5xx"], 1);
    $("c-aborted").textContent = fmtNum(s.aborted || 0);
    $("c-unsolicited").textContent = fmtNum(s.unsolicited, 1);
    $("c-dark").textContent = fmtNum(s.dark, 1);
    var p = s.packets || {};
    $("c-packets").textContent = fmtNum((p.backscatter || 0) + (p.scan || 0) + (p.other || 0), 1);
    showAlerts(s.alerts || []);
  }
  function connectEvents() {
    var es = new EventSource("/api/events");
    es.onopen = function () { $("live").classList.add("on"); };
    es.onerror = function () { $("live").classList.remove("on"); };
    es.onmessage = function (m) { try { onSample(JSON.parse(m.data)); } catch (e) { console.error(e); } };
  }
  function showAlerts(list) {
    var box = $("alerts");
    box.replaceChildren();
    list.forEach(function (a) {
      var d = el("div", null, "alert " + (a.kind === "attack" ? "attack" : ""));
      d.appendChild(el("b", a.kind.replace("_", " ")));
      d.appendChild(document.createTextNode(a.message + " (since " + fmtTime(a.since) + ")"));
      box.appendChild(d);
    });
  }

  // ---- status ---------------------------------------------------------------
  function loadStatus() {
    return api("/api/status").then(function (st) {
      $("version").textContent = st.version || "";
      $("c-uptime").textContent = fmtDur(st.uptime_s || 0);
      $("c-requests").textContent = fmtNum(st.requests_total);
      var prow = [];
      (st.pools || []).forEach(function (p) {
        (p.workers || []).forEach(function (w) {
          prow.push(row([p.site, p.route, p.kind, w.pid, { text: w.state, cls: "state-" + w.state }, fmtNum(w.requests),
            { text: fmtNum(w.errors || 0), cls: w.errors > 0 ? "st5" : "" }, fmtBytes(w.rss_kb), fmtTime(w.started), { text: w.restarts, cls: w.restarts > 0 ? "st4" : "" }]));
        });
        if (!(p.workers || []).length) prow.push(row([p.site, p.route, p.kind, "–", { text: "no workers", cls: "st5" }, "", "", "", "", ""]));
      });
      fill($("pools").tBodies[0], prow, 10, "no worker pools (wsgi and fastcgi_command routes have them)");
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
        fill($("t-recent").tBodies[0], (h.recent || []).slice(0, 50).map(function (e) {
          return row([fmtTime(e.time), e.source, tag(e.category), e.rule, { text: (e.method ? e.method + " " : "") + e.target, cls: "wide" }]);
        }), 5);
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
        card("packets", fmtNum(p.packets));
        card("backscatter", fmtNum(p.classes.backscatter));
        card("scan packets", fmtNum(p.classes.scan));
      }
      $("t-assumption").textContent = p ? "Internet-wide estimate: " + p.est_assumption : "";
      fill($("t-attacks").tBodies[0], ((p && p.attacks) || []).slice(-50).reverse().map(function (a) {
        var svc = (a.services || []).slice(0, 5).map(function (s) { return s.port + ":" + fmtNum(s.packets); }).join(", ") +
          (a.services_other_packets ? ", other:" + fmtNum(a.services_other_packets) : "");
        return row([a.victim, where(a), a.protocol, svc, fmtNum(a.packets), fmtDur(a.duration_s),
          fmtNum(a.mean_pps, 2) + " / " + fmtNum(a.peak_pps, 2), fmtNum(a.est_pps, 1) + " / " + fmtNum(a.est_peak_pps, 1),
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
    return api("/api/history");
  }).then(function (h) {
    samples = (h || []).slice(-KEEP);
    setTheme(document.documentElement.dataset.theme || "light");
    if (samples.length) onSample(samples.pop());
    connectEvents();
    loadStatus(); pollLog();
    setInterval(loadStatus, 5000);
    setInterval(pollLog, 2000);
    setInterval(function () { if (current === "telescope") loadTelescope(); }, 5000);
    var want = location.hash.slice(1);
    if (want && $("tab-" + want)) showTab(want);
  }).catch(function (e) { console.error(e); });
})();
