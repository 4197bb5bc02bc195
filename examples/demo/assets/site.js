// gantry demo: the behaviour behind the gallery pieces. Each piece is found by
// markup (ARIA roles, data- attributes), so a page only includes what it uses.
"use strict";

const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

function storedTheme() {
  try { return localStorage.getItem("theme"); } catch { return null; }
}

const THEMES = ["light", "dark", "sepia", "ocean", "contrast"];

function systemTheme() {
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

// Dark-mode switch: a toggle button (aria-pressed) remembered in localStorage; the
// theme switcher's radio buttons (data-theme-choice) choose among more themes.
function initTheme() {
  const root = document.documentElement;
  const buttons = $$("[data-theme-toggle]");
  const choices = $$("input[data-theme-choice]");
  const show = () => {
    buttons.forEach(b => b.setAttribute("aria-pressed", String(root.dataset.theme === "dark")));
    choices.forEach(c => { c.checked = c.value === root.dataset.theme; });
  };
  const set = theme => {
    root.dataset.theme = theme;
    try { localStorage.setItem("theme", theme); } catch { /* private mode: still switches */ }
    show();
  };
  buttons.forEach(b => b.addEventListener("click", () => set(root.dataset.theme === "dark" ? "light" : "dark")));
  choices.forEach(c => c.addEventListener("change", () => { if (c.checked && THEMES.includes(c.value)) set(c.value); }));
  $$("[data-theme-reset]").forEach(b => b.addEventListener("click", () => {
    try { localStorage.removeItem("theme"); } catch { /* nothing stored */ }
    root.dataset.theme = systemTheme();
    show();
  }));
  // Follow the system while the visitor has not chosen.
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", e => {
    if (!storedTheme()) { root.dataset.theme = e.matches ? "dark" : "light"; show(); }
  });
  show();
}

// The current section is the navigation link whose path is the longest prefix of
// this page's ("/" only for the home page itself).
function initNav() {
  const here = location.pathname.replace(/index\.(html|php|cgi)$/, "");
  let best = null;
  $$(".site-header nav a").forEach(a => {
    const p = a.pathname.replace(/index\.html$/, "");
    if ((p === "/" ? here === "/" : here.startsWith(p)) && (!best || p.length > best.pathname.length)) best = a;
  });
  if (best) best.setAttribute("aria-current", "page");
}

// On a phone the menu collapses behind a button; Escape closes it again.
function initMenu() {
  const header = document.querySelector(".site-header");
  const btn = header && header.querySelector(".menu-btn");
  if (!btn) return;
  const set = open => {
    header.classList.toggle("menu-open", open);
    btn.setAttribute("aria-expanded", String(open));
  };
  btn.addEventListener("click", () => set(btn.getAttribute("aria-expanded") !== "true"));
  header.addEventListener("keydown", e => {
    if (e.key === "Escape" && header.classList.contains("menu-open")) { set(false); btn.focus(); }
  });
}

// Who is signed in comes from the to-do app (GET /todo/api/me), so that every page,
// static or not, shows it and a sign-out button. The token it returns goes with the
// sign-out and sign-in forms (the app refuses a form without it).
const account = { user: null, csrf: "" };

function renderAccount() {
  $$("[data-account]").forEach(box => {
    box.replaceChildren();
    if (account.user) {
      const who = document.createElement("span");
      who.className = "who";
      const name = document.createElement("strong");
      name.textContent = account.user;
      who.append("Signed in as ", name);
      const form = document.createElement("form");
      form.method = "post";
      form.action = "/todo/signout";
      for (const [k, v] of [["csrf", account.csrf], ["next", location.pathname.startsWith("/todo/") ? "/todo/signin" : location.pathname]]) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = k;
        input.value = v;
        form.append(input);
      }
      const out = document.createElement("button");
      out.type = "submit";
      out.textContent = "Sign out";
      form.append(out);
      box.append(who, form);
    } else if (document.getElementById("login")) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn";
      b.textContent = "Sign in";
      b.addEventListener("click", () => openDialog(document.getElementById("login"), b));
      box.append(b);
    } else {
      const a = document.createElement("a");
      a.className = "btn";
      a.href = "/todo/signin?next=" + encodeURIComponent(location.pathname);
      a.textContent = "Sign in";
      box.append(a);
    }
  });
  $$("[data-signed-in]").forEach(el => { el.hidden = !account.user; });
  $$("[data-signed-out]").forEach(el => { el.hidden = !!account.user; });
}

async function initAccount() {
  if (!document.querySelector("[data-account]")) return;
  try {
    const r = await fetch("/todo/api/me", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!r.ok) return; // the to-do app is not running: the plain sign-in link stays
    Object.assign(account, await r.json());
    renderAccount();
  } catch { /* offline: keep the link */ }
}

// The modal login form signs in against the to-do app, in JSON, without leaving
// the page; errors (wrong password, locked) show in the dialog in the error style.
function initLoginForms() {
  $$("form[data-login]").forEach(form => form.addEventListener("submit", async e => {
    e.preventDefault();
    const status = document.getElementById(form.dataset.login);
    const say = (text, error) => {
      status.textContent = text;
      status.className = error ? "alert alert-error" : "alert alert-success";
    };
    const body = new URLSearchParams(new FormData(form));
    body.set("csrf", account.csrf);
    try {
      const r = await fetch("/todo/signin", {
        method: "POST", body, credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const v = await r.json().catch(() => ({}));
      if (v.csrf) account.csrf = v.csrf;
      if (!r.ok) { say(v.error || `Sign-in failed (${r.status}).`, true); return; }
      account.user = v.user;
      renderAccount();
      say(`Signed in as ${v.user}.`, false);
      form.reset();
      const dlg = form.closest("dialog");
      if (dlg) dlg.close();
    } catch {
      say("The sign-in service is not reachable.", true);
    }
  }));
}

// Times are sent as ISO 8601 in <time datetime> and shown in words in the reader's
// language and time zone ("5 minutes ago"), the exact time in the tooltip.
function initRelativeTimes() {
  const times = $$("time[data-relative]");
  if (!times.length) return;
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const render = () => times.forEach(t => {
    const d = new Date(t.dateTime);
    if (isNaN(d)) return;
    const s = (d - Date.now()) / 1000;
    const [unit, size] = units.find(([, n]) => Math.abs(s) >= n) || ["second", 1];
    t.textContent = Math.abs(s) < 45 ? rtf.format(0, "second") : rtf.format(Math.round(s / size), unit);
    t.title = d.toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" });
  });
  render();
  setInterval(render, 30000);
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

function openDialog(dlg, opener) {
  dlg.opener = opener;
  dlg.showModal();
}

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
    openDialog(dlg, opener);
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
  // Escape hides the hints on screen; moving to a tip shows it again.
  tips.forEach(t => ["mouseenter", "mouseleave", "focusin", "focusout"].forEach(ev =>
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
initMenu();
initAccount();
initLoginForms();
initRelativeTimes();
initAccordions();
initTabs();
initTables();
initDialogs();
initTooltips();
initAlerts();
initDemoForms();
initCountdown();

// The 404 page names the address that was asked for.
$$("[data-here]").forEach(el => { el.textContent = location.pathname; });

// Thumbnail preview: the image chosen in a file input is shown before it is sent,
// from a blob: URL of the local file (nothing is uploaded until the form is).
$$("input[type=file][data-preview]").forEach(input => {
  const fig = document.getElementById(input.dataset.preview);
  const img = fig.querySelector("img");
  const cap = fig.querySelector("figcaption");
  input.addEventListener("change", () => {
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    const file = input.files[0];
    if (!file || !file.type.startsWith("image/")) {
      fig.hidden = true;
      img.removeAttribute("src");
      return;
    }
    img.src = URL.createObjectURL(file);
    cap.textContent = `${file.name}, ${(file.size / 1024).toFixed(1)} KB, not sent yet`;
    fig.hidden = false;
  });
});

// Animated buttons: "Press me" also animates for Space and Enter; the loading
// button is busy for a moment, then says it is done.
$$(".anim-press").forEach(b => {
  b.addEventListener("keydown", e => { if (e.key === " " || e.key === "Enter") b.classList.add("pressed"); });
  b.addEventListener("keyup", () => b.classList.remove("pressed"));
  b.addEventListener("blur", () => b.classList.remove("pressed"));
});
$$("[data-load]").forEach(b => b.addEventListener("click", () => {
  if (b.getAttribute("aria-busy") === "true") return;
  const status = document.getElementById("load-status");
  const label = b.textContent;
  b.setAttribute("aria-busy", "true");
  b.classList.remove("done");
  b.textContent = "Saving…";
  status.textContent = "Saving…";
  setTimeout(() => {
    b.removeAttribute("aria-busy");
    b.classList.add("done");
    b.textContent = "Saved";
    status.textContent = "Your changes were saved (demo only).";
    setTimeout(() => { b.textContent = label; b.classList.remove("done"); }, 2500);
  }, 900);
}));

// Parallax: the page's scroll offset is handed to CSS, once per frame; layers
// move by it at their own rate. Reduced motion keeps them still.
$$("[data-parallax]").forEach(box => {
  if (matchMedia("(prefers-reduced-motion: reduce)").matches) return;
  let queued = false;
  const update = () => {
    queued = false;
    box.style.setProperty("--scroll", String(Math.round(box.getBoundingClientRect().top * -1)));
  };
  addEventListener("scroll", () => { if (!queued) { queued = true; requestAnimationFrame(update); } }, { passive: true });
  update();
});

// Image filters: each slider sets a CSS variable the filter reads.
$$("form[data-filters]").forEach(form => {
  const img = document.getElementById(form.dataset.filters);
  const apply = () => $$("input[type=range]", form).forEach(r => {
    const v = r.value + r.dataset.unit;
    img.style.setProperty("--" + r.name, v);
    document.getElementById(r.id + "-out").textContent = v;
  });
  form.addEventListener("input", apply);
  form.addEventListener("reset", () => setTimeout(apply));
  apply();
});

// Back and forward: each step is a history entry (?step=N); popstate shows the
// step the browser went back or forward to.
$$("[data-steps]").forEach(box => {
  const links = $$("[data-step]", box);
  const count = links.length;
  const current = () => Math.min(count, Math.max(1, Number(new URLSearchParams(location.search).get("step")) || 1));
  const show = (n, focus) => {
    links.forEach(a => a.dataset.step === String(n) ? a.setAttribute("aria-current", "step") : a.removeAttribute("aria-current"));
    $$("[data-step-panel]", box).forEach(p => { p.hidden = p.dataset.stepPanel !== String(n); });
    $$("[data-step-go]", box).forEach(b => {
      const to = n + Number(b.dataset.stepGo);
      b.disabled = to < 1 || to > count;
    });
    if (focus) box.querySelector(`[data-step-panel="${n}"] h2`).focus();
  };
  const go = n => {
    if (n === current()) return;
    history.pushState({ step: n }, "", "?step=" + n);
    show(n, true);
  };
  links.forEach(a => a.addEventListener("click", e => { e.preventDefault(); go(Number(a.dataset.step)); }));
  $$("[data-step-go]", box).forEach(b => b.addEventListener("click", () => go(current() + Number(b.dataset.stepGo))));
  addEventListener("popstate", () => show(current(), true));
  show(current(), false);
});

// Hide and show: a disclosure button toggles what it controls.
$$("[data-disclose]").forEach(b => {
  const target = document.getElementById(b.getAttribute("aria-controls"));
  const label = b.textContent;
  b.addEventListener("click", () => {
    const open = b.getAttribute("aria-expanded") !== "true";
    b.setAttribute("aria-expanded", String(open));
    target.hidden = !open;
    b.textContent = open ? label.replace(/^Show/, "Hide") : label;
  });
});

// Toggle a class on a target: a button (aria-pressed) or a checkbox.
$$("[data-toggle-class]").forEach(el => {
  const target = document.querySelector(el.dataset.target);
  const cls = el.dataset.toggleClass;
  if (el.type === "checkbox") {
    el.addEventListener("change", () => target.classList.toggle(cls, el.checked));
    return;
  }
  el.addEventListener("click", () => {
    const on = target.classList.toggle(cls);
    el.setAttribute("aria-pressed", String(on));
    if (cls === "following") el.textContent = on ? "Following" : "Follow";
  });
});

// Pricing: monthly or yearly prices.
$$("[data-billing]").forEach(set => set.addEventListener("change", () => {
  const period = set.querySelector("input:checked").value;
  $$("[data-month]").forEach(el => { el.textContent = el.dataset[period]; });
}));
