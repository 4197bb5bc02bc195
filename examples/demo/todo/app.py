"""The demo's WSGI piece: a to-do list. Standard library only (sqlite3, no framework).

Add, complete (and reopen), delete, and page through the list ten at a time. Every
change is a POST with a CSRF token, answered with a redirect (POST/redirect/GET), so
reloading a page never repeats an action. Links and forms are built from SCRIPT_NAME,
so the app works wherever it is mounted (/todo/ in the demo).

The list lives in $TODO_DB, else data/todo.sqlite3 beside this file, else
/tmp/gantry-demo-todo/todo.sqlite3 when this directory is read-only.
"""
import html
import hmac
import os
import secrets
import sqlite3
import threading
from http import cookies
from urllib.parse import parse_qs

PER_PAGE = 10
MAX_TITLE = 200
MAX_BODY = 16 << 10
HERE = os.path.dirname(os.path.abspath(__file__))


def _db_path():
    if os.environ.get("TODO_DB"):
        return os.environ["TODO_DB"]
    for d in (os.path.join(HERE, "data"), "/tmp/gantry-demo-todo"):
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return os.path.join(d, "todo.sqlite3")
        except OSError:
            continue
    raise RuntimeError("todo: no writable directory for the database; set TODO_DB")


DB_PATH = _db_path()
_local = threading.local()


def db():
    """One connection per worker thread; sqlite3 connections are not shared."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("""CREATE TABLE IF NOT EXISTS todo (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL DEFAULT (datetime('now')))""")
        conn.commit()
        _local.conn = conn
    return conn


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>To-do list · gantry demo</title>
<link rel="stylesheet" href="/assets/site.css">
<script src="/assets/theme.js"></script>
<style>
.todo-add {{ display: flex; gap: .5rem; margin: 1rem 0; }}
.todo-add input[type=text] {{ flex: 1; padding: .5rem .75rem; font: inherit; border: 1px solid var(--border);
  border-radius: var(--radius); background: var(--card); color: var(--fg); }}
.todo-list {{ list-style: none; padding: 0; margin: 0; }}
.todo-list li {{ display: flex; align-items: center; gap: .75rem; padding: .6rem .75rem; background: var(--card);
  border: 1px solid var(--border); border-radius: var(--radius); margin-bottom: .5rem; }}
.todo-list .title {{ flex: 1; overflow-wrap: anywhere; }}
.todo-list .done .title {{ text-decoration: line-through; color: var(--muted); }}
.todo-list form {{ margin: 0; }}
.todo-list button, .todo-add button {{ font: inherit; padding: .35rem .8rem; border-radius: var(--radius);
  border: 1px solid var(--border); background: var(--card); color: var(--fg); cursor: pointer; }}
.todo-add button {{ background: var(--accent); color: var(--accent-fg); border-color: var(--accent); }}
.pager {{ display: flex; gap: 1rem; align-items: center; margin-top: 1rem; }}
.flash {{ padding: .5rem .75rem; border-radius: var(--radius); background: var(--danger); }}
</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site-header"><a href="/">gantry demo</a><span class="muted">To-do list (Python WSGI)</span></header>
<main id="main">
<h1>To-do list</h1>
<p class="lead">{summary}</p>
{flash}
<form class="todo-add" method="post" action="{base}/add">
<input type="hidden" name="csrf" value="{csrf}">
<label class="skip" for="title">New item</label>
<input type="text" id="title" name="title" maxlength="{max_title}" placeholder="What needs doing?" required autofocus>
<button type="submit">Add</button>
</form>
<ul class="todo-list">
{items}
</ul>
{pager}
</main>
</body>
</html>
"""

ITEM = """<li class="{cls}">
<form method="post" action="{base}/toggle/{id}"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="page" value="{page}">
<button type="submit" aria-label="{toggle_label}: {title}">{toggle}</button></form>
<span class="title">{title}</span>
<form method="post" action="{base}/delete/{id}"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="page" value="{page}">
<button type="submit" aria-label="Delete: {title}">Delete</button></form>
</li>"""


def respond(start_response, status, body, headers=()):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/html; charset=utf-8"),
                            ("Content-Length", str(len(data))),
                            ("X-Content-Type-Options", "nosniff")] + list(headers))
    return [data]


def redirect(start_response, location, headers=()):
    start_response("303 See Other", [("Location", location), ("Content-Type", "text/plain"),
                                     ("Content-Length", "0")] + list(headers))
    return [b""]


def csrf_token(environ):
    """The token from the cookie, or a new one (double-submit cookie)."""
    c = cookies.SimpleCookie()
    try:
        c.load(environ.get("HTTP_COOKIE", ""))
    except cookies.CookieError:
        pass
    if "todo_csrf" in c and len(c["todo_csrf"].value) == 32:
        return c["todo_csrf"].value, False
    return secrets.token_hex(16), True


def cookie_header(token, base):
    return ("Set-Cookie", "todo_csrf=%s; Path=%s/; HttpOnly; SameSite=Strict" % (token, base))


def read_form(environ):
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    if n > MAX_BODY:
        return None
    data = environ["wsgi.input"].read(n) if n > 0 else b""
    return {k: v[0] for k, v in parse_qs(data.decode("utf-8", "replace")).items()}


def page_number(value):
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def show(environ, start_response, base, csrf, new_cookie, flash=""):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    page = page_number(q.get("page", ["1"])[0])
    conn = db()
    total, open_count = conn.execute("SELECT COUNT(*), COALESCE(SUM(done = 0), 0) FROM todo").fetchone()
    pages = max(1, (total + PER_PAGE - 1) // PER_PAGE)
    page = min(page, pages)
    rows = conn.execute("SELECT id, title, done FROM todo ORDER BY done, id DESC LIMIT ? OFFSET ?",
                        (PER_PAGE, (page - 1) * PER_PAGE)).fetchall()
    items = "\n".join(ITEM.format(
        base=base, id=i, csrf=csrf, page=page, title=html.escape(t), cls="done" if d else "",
        toggle="Reopen" if d else "Done", toggle_label="Reopen" if d else "Mark done") for i, t, d in rows)
    if not rows:
        items = '<li class="muted">Nothing to do. Add something above.</li>'
    pager = ""
    if pages > 1:
        prev_link = '<a href="%s/?page=%d" rel="prev">Previous</a>' % (base, page - 1) if page > 1 else ""
        next_link = '<a href="%s/?page=%d" rel="next">Next</a>' % (base, page + 1) if page < pages else ""
        pager = '<nav class="pager" aria-label="Pages">%s<span>Page %d of %d</span>%s</nav>' % (
            prev_link, page, pages, next_link)
    summary = "%d item%s, %d open." % (total, "" if total == 1 else "s", open_count)
    body = PAGE.format(base=base, csrf=csrf, items=items, pager=pager, summary=summary,
                       max_title=MAX_TITLE, flash='<p class="flash" role="alert">%s</p>' % flash if flash else "")
    headers = [cookie_header(csrf, base)] if new_cookie else []
    headers.append(("Cache-Control", "no-store"))
    return respond(start_response, "422 Unprocessable Entity" if flash else "200 OK", body, headers)


def application(environ, start_response):
    base = environ.get("SCRIPT_NAME", "").rstrip("/")
    path = environ.get("PATH_INFO", "") or "/"
    method = environ["REQUEST_METHOD"]
    csrf, new_cookie = csrf_token(environ)

    if path == "/" and method in ("GET", "HEAD"):
        return show(environ, start_response, base, csrf, new_cookie)
    if path == "/":
        start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
        return [b"405 Method Not Allowed\n"]

    parts = path.strip("/").split("/")
    action = parts[0]
    if action not in ("add", "toggle", "delete") or (action == "add") != (len(parts) == 1) or len(parts) > 2:
        return respond(start_response, "404 Not Found", "<h1>Not found</h1>")
    if method != "POST":
        start_response("405 Method Not Allowed", [("Allow", "POST"), ("Content-Type", "text/plain")])
        return [b"405 Method Not Allowed\n"]
    form = read_form(environ)
    if form is None:
        return respond(start_response, "413 Request Entity Too Large", "<h1>Too large</h1>")
    if new_cookie or not hmac.compare_digest(form.get("csrf", ""), csrf):
        return respond(start_response, "403 Forbidden",
                       "<h1>Forbidden</h1><p>The form expired. <a href=\"%s/\">Reload the list</a>.</p>" % base)

    conn = db()
    page = page_number(form.get("page"))
    if action == "add":
        title = " ".join(form.get("title", "").split())
        if not title or len(title) > MAX_TITLE:
            environ["QUERY_STRING"] = ""
            return show(environ, start_response, base, csrf, False,
                        flash="An item needs 1 to %d characters." % MAX_TITLE)
        conn.execute("INSERT INTO todo (title) VALUES (?)", (title,))
        page = 1
    else:
        try:
            item = int(parts[1])
        except ValueError:
            return respond(start_response, "404 Not Found", "<h1>Not found</h1>")
        if action == "toggle":
            cur = conn.execute("UPDATE todo SET done = 1 - done WHERE id = ?", (item,))
        else:
            cur = conn.execute("DELETE FROM todo WHERE id = ?", (item,))
        if cur.rowcount == 0:
            conn.rollback()
            return respond(start_response, "404 Not Found", "<h1>No such item</h1>")
    conn.commit()
    return redirect(start_response, "%s/?page=%d" % (base, page) if page > 1 else base + "/")
