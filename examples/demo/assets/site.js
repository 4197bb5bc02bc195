// gantry demo: the behaviour behind the gallery pieces. Each piece is found by
// markup (ARIA roles, data- attributes), so a page only includes what it uses.
"use strict";

const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

function storedTheme() {
  try { return localStorage.getItem("theme"); } catch { return null; }
}

// Dark-mode switch: a toggle button (aria-pressed) remembered in localStorage.
function initTheme() {
  const root = document.documentElement;
  const buttons = $$("[data-theme-toggle]");
  const show = () => buttons.forEach(b => b.setAttribute("aria-pressed", String(root.dataset.theme === "dark")));
  buttons.forEach(b => b.addEventListener("click", () => {
    root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
    try { localStorage.setItem("theme", root.dataset.theme); } catch { /* private mode: still switches */ }
    show();
  }));
  $$("[data-theme-reset]").forEach(b => b.addEventListener("click", () => {
    try { localStorage.removeItem("theme"); } catch { /* nothing stored */ }
    root.dataset.theme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    show();
  }));
  // Follow the system while the visitor has not chosen.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", e => {
    if (!storedTheme()) { root.dataset.theme = e.matches ? "dark" : "light"; show(); }
  });
  show();
}

function initNav() {
  const here = location.pathname.replace(/index\.html$/, "");
  $$(".site-header nav a").forEach(a => {
    if (a.pathname.replace(/index\.html$/, "") === here) a.setAttribute("aria-current", "page");
  });
}

// Accordion (WAI-ARIA pattern): header buttons with aria-expanded; arrows move between them.
function initAccordions() {
  $$(".accordion").forEach(acc => {
    const triggers = $$(".accordion-trigger", acc);
    triggers.forEach((t, i) => {
      const panel = document.getElementById(t.getAttribute("aria-controls"));
      t.addEventListener("click", () => {
        const open = t.getAttribute("aria-expanded") === "true";
        t.setAttribute("aria-expanded", String(!open));
        panel.hidden = open;
      });
      t.addEventListener("keydown", e => {
        const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: triggers.length - 1 }[e.key];
        if (to === undefined) return;
        e.preventDefault();
        triggers[(to + triggers.length) % triggers.length].focus();
      });
    });
  });
}

// Tabs with a roving tabindex: Tab enters the list, arrows choose, Home/End jump.
function initTabs() {
  $$('[role="tablist"]').forEach(list => {
    const tabs = $$('[role="tab"]', list);
    const vertical = list.getAttribute("aria-orientation") === "vertical";
    const select = tab => tabs.forEach(t => {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => select(tab));
      tab.addEventListener("keydown", e => {
        const keys = { Home: 0, End: tabs.length - 1 };
        keys[vertical ? "ArrowDown" : "ArrowRight"] = i + 1;
        keys[vertical ? "ArrowUp" : "ArrowLeft"] = i - 1;
        if (!(e.key in keys)) return;
        e.preventDefault();
        const next = tabs[(keys[e.key] + tabs.length) % tabs.length];
        select(next);
        next.focus();
      });
    });
  });
}

// Sortable table with pagination. Headers are buttons; aria-sort tells screen
// readers the order; a live region announces which rows are shown.
function initTables() {
  $$("table[data-sortable]").forEach(table => {
    const tbody = table.tBodies[0];
    const rows = [...tbody.rows];
    const size = Number(table.dataset.pageSize) || rows.length;
    const pages = Math.max(1, Math.ceil(rows.length / size));
    const pager = document.getElementById(table.dataset.pager);
    const status = document.getElementById(table.dataset.status);
    let page = 0;
    const btn = (label, onClick, aria) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      if (aria) b.setAttribute("aria-label", aria);
      b.addEventListener("click", onClick);
      pager.append(b);
      return b;
    };
    let prev, next, numbers = [];
    if (pager && pages > 1) {
      prev = btn("Previous", () => go(page - 1));
      numbers = Array.from({ length: pages }, (_, i) => btn(String(i + 1), () => go(i), `Page ${i + 1}`));
      next = btn("Next", () => go(page + 1));
    }
    const render = () => {
      tbody.replaceChildren(...rows.slice(page * size, (page + 1) * size));
      numbers.forEach((b, i) => i === page ? b.setAttribute("aria-current", "page") : b.removeAttribute("aria-current"));
      if (prev) {
        // A disabled button drops focus; hand it to the other end first.
        if (page === 0 && document.activeElement === prev) next.focus();
        if (page === pages - 1 && document.activeElement === next) prev.focus();
        prev.disabled = page === 0;
        next.disabled = page === pages - 1;
      }
      if (status) {
        const last = Math.min(rows.length, (page + 1) * size);
        status.textContent = `Showing rows ${page * size + 1}\u2013${last} of ${rows.length}`;
      }
    };
    const go = p => { page = Math.min(pages - 1, Math.max(0, p)); render(); };
    $$("th button", table).forEach(b => b.addEventListener("click", () => {
      const th = b.closest("th");
      const col = th.cellIndex;
      const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
      $$("th", table).forEach(h => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir);
      const key = r => r.cells[col].dataset.value ?? r.cells[col].textContent.trim();
      const numeric = th.classList.contains("num");
      rows.sort((a, c) => {
        const d = numeric ? key(a) - key(c) : key(a).localeCompare(key(c), undefined, { numeric: true });
        return dir === "ascending" ? d : -d;
      });
      go(0);
    }));
    render();
  });
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

// Modal dialogs on native <dialog>: showModal() makes the page inert and keeps
// focus inside; Escape closes; focus goes back to the button that opened it.
function initDialogs() {
  $$("[data-open]").forEach(opener => opener.addEventListener("click", () => {
    const dlg = document.getElementById(opener.dataset.open);
    const img = opener.querySelector("img");
    if (img && dlg.querySelector(".lightbox-img")) {
      dlg.querySelector(".lightbox-img").src = img.src;
      dlg.querySelector(".lightbox-img").alt = img.alt;
      dlg.querySelector("h2").textContent = img.dataset.caption || img.alt;
    }
    dlg.opener = opener;
    dlg.showModal();
  }));
  $$("dialog").forEach(dlg => {
    dlg.addEventListener("click", e => { if (e.target === dlg) dlg.close(); }); // backdrop
    dlg.addEventListener("close", () => dlg.opener && dlg.opener.focus());
    // A modal <dialog> lets Tab escape to the browser's own controls; keep
    // it cycling through the dialog instead.
    dlg.addEventListener("keydown", e => {
      if (e.key !== "Tab") return;
      const f = $$(FOCUSABLE, dlg).filter(el => el.getClientRects().length);
      if (!f.length) return;
      const first = f[0], last = f[f.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    });
    $$("[data-close]", dlg).forEach(b => b.addEventListener("click", () => dlg.close()));
  });
}

// Tooltips show on hover and focus; Escape hides them without moving focus.
function initTooltips() {
  const tips = $$(".tip");
  if (!tips.length) return;
  document.addEventListener("keydown", e => {
    if (e.key === "Escape") tips.forEach(t => t.classList.add("tip-dismissed"));
  });
  tips.forEach(t => ["mouseleave", "focusout"].forEach(ev =>
    t.addEventListener(ev, () => t.classList.remove("tip-dismissed"))));
}

// Dismissible alerts and toasts announced through a live region.
function dismissible(alert) {
  alert.querySelector("[data-dismiss]").addEventListener("click", () => {
    const next = alert.nextElementSibling && alert.nextElementSibling.querySelector("[data-dismiss]");
    const fallback = alert.closest("section") && alert.closest("section").querySelector("h2");
    alert.remove();
    if (next) next.focus(); else if (fallback) fallback.focus();
  });
}

function initAlerts() {
  $$(".alert [data-dismiss]").forEach(b => dismissible(b.closest(".alert")));
  const region = document.querySelector(".toasts");
  $$("[data-toast]").forEach(b => b.addEventListener("click", () => {
    const t = document.createElement("div");
    t.className = "alert alert-" + (b.dataset.kind || "success");
    t.innerHTML = '<p></p><button type="button" class="icon-btn" data-dismiss aria-label="Dismiss">\u00d7</button>';
    t.querySelector("p").textContent = b.dataset.toast;
    region.append(t);
    dismissible(t);
    setTimeout(() => { if (!t.contains(document.activeElement)) t.remove(); }, 6000);
  }));
}

// Visual-only forms: say so instead of sending anything.
function initDemoForms() {
  $$("form[data-demo]").forEach(f => f.addEventListener("submit", e => {
    e.preventDefault();
    document.getElementById(f.dataset.demo).textContent = f.dataset.message || "Demo only: nothing was sent.";
  }));
}

// Countdown to the launch in the <time> element, updated every second.
function initCountdown() {
  const el = document.querySelector("[data-countdown]");
  if (!el) return;
  const now = new Date();
  const launch = el.dateTime ? new Date(el.dateTime) : new Date(now.getFullYear(), now.getMonth() + 1, 1, 9);
  el.dateTime = launch.toISOString();
  el.textContent = launch.toLocaleString(undefined, { dateStyle: "long", timeStyle: "short" });
  const parts = ["days", "hours", "minutes", "seconds"].map(u => document.getElementById("cd-" + u));
  const tick = () => {
    let s = Math.max(0, Math.floor((launch - Date.now()) / 1000));
    [86400, 3600, 60, 1].forEach((unit, i) => {
      parts[i].textContent = String(Math.floor(s / unit)).padStart(2, "0");
      s %= unit;
    });
  };
  tick();
  setInterval(tick, 1000);
}

initTheme();
initNav();
initAccordions();
initTabs();
initTables();
initDialogs();
initTooltips();
initAlerts();
initDemoForms();
initCountdown();
