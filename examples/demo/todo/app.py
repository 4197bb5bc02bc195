"""The demo's WSGI piece: a to-do list with accounts. Standard library only.

Accounts: sign up, sign in, sign out. Passwords are stored as scrypt hashes
(hashlib.scrypt, a random salt each). A signed-in browser holds a session cookie
(HttpOnly, SameSite=Lax, Secure when the request came over HTTPS) whose SHA-256 is
all the database keeps. Five wrong passwords for one account from one address lock
that pair for a minute. Each account sees only its own list.

Every form carries a CSRF token. Signed out, it is a random value in an HttpOnly
cookie that the form must echo (double submit); signed in, it is an HMAC of the
session's secret, so that a cookie planted by someone else forges nothing.
SameSite=Lax keeps other sites' posts from carrying the session anyway. Every change is a POST answered with a redirect (POST/redirect/GET).
Links and forms are built from SCRIPT_NAME, so the app works wherever it is mounted
(/todo/ in the demo).

GET {base}/api/me answers {"user": ..., "csrf": ...} as JSON, for the static pages'
header (who is signed in, and the token their sign-out and sign-in forms send). A
POST to /signin or /signout that asks for JSON (Accept: application/json) is
answered in JSON instead of a redirect: the gallery's modal login form uses it.

Data lives in $TODO_DB, else data/todo.sqlite3 beside this file, else
/tmp/gantry-demo-todo/todo.sqlite3 when this directory is read-only. The page parts
(header, footer) are read from ../assets/partials, shared with the static pages.
"""
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from datetime import datetime, timezone
from http import cookies
from urllib.parse import parse_qs

PER_PAGE = 10
MAX_TITLE = 200
MAX_BODY = 16 << 10
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 8, 200
MAX_FAILURES = 5
LOCK_SECONDS = int(os.environ.get("TODO_LOCK_SECONDS") or 60)
SESSION_SECONDS = 14 * 86400
SCRYPT = dict(n=1 << 14, r=8, p=1, dklen=32, maxmem=64 << 20)
EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = os.path.join(HERE, "..", "assets", "partials")


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

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    email TEXT NOT NULL,
    addr TEXT NOT NULL,
    count INTEGER NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (email, addr));
CREATE TABLE IF NOT EXISTS todo (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE);
"""


def db():
    """One connection per worker thread; sqlite3 connections are not shared."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(SCHEMA)
        # A list from before accounts has no owner column: add it; its items then
        # belong to nobody and are shown to no one.
        if "user_id" not in [r[1] for r in conn.execute("PRAGMA table_info(todo)")]:
            conn.execute("ALTER TABLE todo ADD COLUMN user_id INTEGER")
        conn.execute("CREATE INDEX IF NOT EXISTS todo_user ON todo (user_id, done, id)")
        conn.commit()
        _local.conn = conn
    return conn


# Passwords ------------------------------------------------------------------

def hash_password(password):
    salt = secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode("utf-8"), salt=salt, **SCRYPT)
    return "scrypt$%d$%d$%d$%s$%s" % (SCRYPT["n"], SCRYPT["r"], SCRYPT["p"], salt.hex(), h.hex())


# Checked against when the account does not exist, so that the answer takes as long
# as for a wrong password and does not tell which accounts exist.
_DUMMY = hash_password(secrets.token_hex(8))


def check_password(password, stored):
    try:
        scheme, n, r, p, salt, want = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(want) // 2, maxmem=SCRYPT["maxmem"])
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), want)


# Page parts ------------------------------------------------------------------

def _part(name, fallback):
    try:
        with open(os.path.join(PARTS, name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return fallback


HEAD = _part("head.html", '<link rel="stylesheet" href="/assets/site.css">\n')
HEADER = _part("header.html", '<header class="site-header"><a class="brand" href="/">gantry</a>'
                              '<div class="account" data-account></div></header>\n')
FOOTER = _part("footer.html", "")
ACCOUNT_RE = re.compile(r'<div class="account" data-account>.*?</div>', re.S)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · gantry demo</title>
{head}</head>
<body>
{header}<main id="main">
{main}
</main>
{footer}</body>
</html>
"""


def page(ctx, title, main):
    if ctx.user:
        account = ('<div class="account" data-account><span class="who">Signed in as <strong>%s</strong></span>'
                   '<form method="post" action="%s/signout"><input type="hidden" name="csrf" value="%s">'
                   '<button type="submit">Sign out</button></form></div>'
                   % (html.escape(ctx.user[1]), ctx.base, ctx.csrf))
    else:
        account = '<div class="account" data-account><a class="btn" href="%s/signin">Sign in</a></div>' % ctx.base
    header = ACCOUNT_RE.sub(lambda _: account, HEADER, count=1)
    return PAGE.format(title=html.escape(title), head=HEAD, header=header, main=main, footer=FOOTER)


TODO_MAIN = """<h1>To-do list</h1>
<p class="lead">{summary}</p>
{flash}
<form class="todo-add" method="post" action="{base}/add">
<input type="hidden" name="csrf" value="{csrf}">
<label class="skip" for="title">New item</label>
<input type="text" id="title" name="title" maxlength="{max_title}" placeholder="What needs doing?" required autofocus>
<button type="submit" class="btn-primary">Add</button>
</form>
<ul class="todo-list">
{items}
</ul>
{pager}"""

ITEM = """<li class="{cls}">
<form method="post" action="{base}/toggle/{id}"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="page" value="{page}">
<button type="submit" aria-label="{toggle_label}: {title}">{toggle}</button></form>
<span class="title">{title}</span>
<time class="muted" datetime="{created}" data-relative>{created_text}</time>
<form method="post" action="{base}/delete/{id}"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="page" value="{page}">
<button type="submit" aria-label="Delete: {title}">Delete</button></form>
</li>"""

AUTH_MAIN = """<h1>{heading}</h1>
<p class="lead">{lead}</p>
{flash}
<form class="stack" method="post" action="{base}/{action}">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label for="email">Email</label>
<input id="email" type="email" name="email" value="{email}" maxlength="{max_email}" autocomplete="username" required autofocus>
<label for="password">Password{hint}</label>
<input id="password" type="password" name="password" minlength="{min_pw}" maxlength="{max_pw}" autocomplete="{autocomplete}" required>
<div class="form-actions"><button type="submit" class="btn-primary">{button}</button></div>
</form>
<p>{other}</p>"""


# Requests ----------------------------------------------------------------------

class Ctx:
    """What one request carries: where the app is mounted, the CSRF token, the user."""

    def __init__(self, environ):
        self.environ = environ
        self.base = environ.get("SCRIPT_NAME", "").rstrip("/")
        self.https = environ.get("wsgi.url_scheme") == "https"
        self.addr = environ.get("REMOTE_ADDR", "")
        jar = cookies.SimpleCookie()
        try:
            jar.load(environ.get("HTTP_COOKIE", ""))
        except cookies.CookieError:
            pass
        c = jar.get("todo_csrf")
        self.new_csrf = not (c and re.fullmatch(r"[0-9a-f]{32}", c.value))
        # The cookie's token is the signed-out forms' (double submit); a signed-in
        # user's comes from the session, so that a cookie someone else planted
        # (a sibling subdomain, an injected plain-HTTP answer) forges nothing.
        self.cookie_csrf = secrets.token_hex(16) if self.new_csrf else c.value
        s = jar.get("todo_session")
        self.session = s.value if s and re.fullmatch(r"[A-Za-z0-9_-]{43}", s.value) else None
        self.user = self._user()
        self.csrf = _session_csrf(self.session) if self.user else self.cookie_csrf
        self.headers = []
        if self.new_csrf:
            self.headers.append(self.cookie("todo_csrf", self.cookie_csrf, None))
        self.wants_json = "application/json" in environ.get("HTTP_ACCEPT", "")

    def _user(self):
        if not self.session:
            return None
        return db().execute(
            "SELECT users.id, users.email FROM sessions JOIN users ON users.id = sessions.user_id "
            "WHERE sessions.hash = ? AND sessions.expires > ?", (_sha(self.session), time.time())).fetchone()

    def cookie(self, name, value, max_age):
        c = "%s=%s; Path=%s/; HttpOnly; SameSite=Lax" % (name, value, self.base)
        if max_age is not None:
            c += "; Max-Age=%d" % max_age
        if self.https:
            c += "; Secure"
        return ("Set-Cookie", c)

    def csrf_ok(self, form, signed_out_form=False):
        """signed_out_form: the sign-in and sign-up forms, which a signed-in browser
        may still hold from before; they also take the cookie's token, which lets
        whoever planted it no further than the signed-out forms already do."""
        sent = form.get("csrf", "")
        if self.user and hmac.compare_digest(sent, self.csrf):
            return True
        return (not self.user or signed_out_form) and not self.new_csrf and hmac.compare_digest(sent, self.cookie_csrf)


def _sha(token):
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _session_csrf(token):
    """The forms' token of a session: only its holder and the app can make it."""
    return hmac.new(token.encode("ascii"), b"todo csrf", hashlib.sha256).hexdigest()[:32]


def respond(start_response, ctx, status, body, ctype="text/html; charset=utf-8", extra=()):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data))),
                            ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
                            ("Referrer-Policy", "same-origin")] + ctx.headers + list(extra))
    return [data]


def respond_json(start_response, ctx, status, obj, extra=()):
    return respond(start_response, ctx, status, json.dumps(obj), "application/json", extra)


def redirect(start_response, ctx, location):
    start_response("303 See Other", [("Location", location), ("Content-Type", "text/plain"),
                                     ("Content-Length", "0"), ("Cache-Control", "no-store")] + ctx.headers)
    return [b""]


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


def safe_next(ctx, value):
    """A local path to go to after signing in; never another site."""
    # Printable ASCII only: a Location field carries nothing else, and the WSGI
    # server refuses the whole answer (a 500 after the session was made) when it
    # cannot encode one.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value \
            and all(0x21 <= ord(c) <= 0x7e for c in value):
        return value
    return ctx.base + "/"


def flash_html(text):
    return '<p class="alert alert-error" role="alert">%s</p>' % html.escape(text) if text else ""


# Accounts ----------------------------------------------------------------------

def auth_page(start_response, ctx, action, status="200 OK", flash="", email="", nxt=""):
    signup = action == "signup"
    main = AUTH_MAIN.format(
        heading="Create an account" if signup else "Sign in",
        lead="An account keeps your own to-do list." if signup else "Sign in to see your to-do list.",
        flash=flash_html(flash), base=ctx.base, action=action, csrf=ctx.csrf,
        next=html.escape(nxt or ctx.base + "/"), email=html.escape(email), max_email=MAX_EMAIL,
        hint=" (%d characters or more)" % MIN_PASSWORD if signup else "", min_pw=MIN_PASSWORD if signup else 1,
        max_pw=MAX_PASSWORD, autocomplete="new-password" if signup else "current-password",
        button="Sign up" if signup else "Sign in",
        other=('Have an account? <a href="%s/signin">Sign in</a>' if signup
               else 'New here? <a href="%s/signup">Create an account</a>') % ctx.base)
    return respond(start_response, ctx, status, page(ctx, "Sign up" if signup else "Sign in", main))


def start_session(ctx, user_id):
    token = secrets.token_urlsafe(32)
    conn = db()
    conn.execute("DELETE FROM sessions WHERE expires <= ?", (time.time(),))
    if ctx.session:  # a new id at every sign-in: a planted cookie never becomes a session
        conn.execute("DELETE FROM sessions WHERE hash = ?", (_sha(ctx.session),))
    conn.execute("INSERT INTO sessions (hash, user_id, expires) VALUES (?, ?, ?)",
                 (_sha(token), user_id, time.time() + SESSION_SECONDS))
    conn.commit()
    ctx.headers.append(ctx.cookie("todo_session", token, SESSION_SECONDS))
    ctx.csrf = _session_csrf(token)


def signin(start_response, ctx, form):
    email = form.get("email", "").strip().lower()[:MAX_EMAIL + 1]
    password = form.get("password", "")
    nxt = safe_next(ctx, form.get("next"))

    def refuse(status, message, extra=()):
        if ctx.wants_json:
            return respond_json(start_response, ctx, status, {"error": message}, extra)
        ctx.headers.extend(extra)
        return auth_page(start_response, ctx, "signin", status, message, email, nxt)

    conn = db()
    now = time.time()
    locked = lambda: refuse("429 Too Many Requests",
                            "Too many wrong passwords: try again in %d seconds." % LOCK_SECONDS,
                            [("Retry-After", str(LOCK_SECONDS))])
    # The attempt is counted before the password is checked, in one write
    # transaction: parallel guesses cannot slip past the limit while the hashes run.
    conn.commit()
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute("SELECT count, locked_until FROM failures WHERE email = ? AND addr = ?",
                       (email, ctx.addr)).fetchone()
    if row and row[1] > now:
        conn.rollback()
        wait = int(row[1] - now) + 1
        return refuse("429 Too Many Requests",
                      "Too many wrong passwords: try again in %d seconds." % wait, [("Retry-After", str(wait))])
    if row and row[0] >= MAX_FAILURES:
        conn.rollback()
        return locked()
    conn.execute("INSERT INTO failures (email, addr, count) VALUES (?, ?, 1) "
                 "ON CONFLICT (email, addr) DO UPDATE SET count = count + 1, locked_until = 0",
                 (email, ctx.addr))
    conn.commit()
    user = conn.execute("SELECT id, password FROM users WHERE email = ?", (email,)).fetchone()
    ok = check_password(password, user[1] if user else _DUMMY) and user is not None
    if not ok:
        cur = conn.execute("UPDATE failures SET count = 0, locked_until = ? "
                           "WHERE email = ? AND addr = ? AND count >= ?",
                           (time.time() + LOCK_SECONDS, email, ctx.addr, MAX_FAILURES))
        conn.commit()
        if cur.rowcount:
            return locked()
        return refuse("401 Unauthorized", "Wrong email or password.")
    conn.execute("DELETE FROM failures WHERE email = ? AND addr = ?", (email, ctx.addr))
    start_session(ctx, user[0])
    if ctx.wants_json:
        return respond_json(start_response, ctx, "200 OK", {"user": email, "csrf": ctx.csrf})
    return redirect(start_response, ctx, nxt)


def signup(start_response, ctx, form):
    email = " ".join(form.get("email", "").split()).lower()
    password = form.get("password", "")
    nxt = safe_next(ctx, form.get("next"))
    problem = ""
    if len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
        problem = "Email: a valid address, like you@example.com."
    elif not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        problem = "Password: %d to %d characters." % (MIN_PASSWORD, MAX_PASSWORD)
    if problem:
        return auth_page(start_response, ctx, "signup", "422 Unprocessable Entity", problem, email, nxt)
    conn = db()
    try:
        cur = conn.execute("INSERT INTO users (email, password) VALUES (?, ?)", (email, hash_password(password)))
    except sqlite3.IntegrityError:
        conn.rollback()
        return auth_page(start_response, ctx, "signup", "409 Conflict",
                         "That email already has an account: sign in instead.", email, nxt)
    conn.commit()
    start_session(ctx, cur.lastrowid)
    return redirect(start_response, ctx, nxt)


def signout(start_response, ctx, form):
    if ctx.session:
        conn = db()
        conn.execute("DELETE FROM sessions WHERE hash = ?", (_sha(ctx.session),))
        conn.commit()
    ctx.headers.append(ctx.cookie("todo_session", "", 0))
    ctx.csrf = ctx.cookie_csrf
    if ctx.wants_json:
        return respond_json(start_response, ctx, "200 OK", {"user": None, "csrf": ctx.csrf})
    return redirect(start_response, ctx, safe_next(ctx, form.get("next") or ctx.base + "/signin"))


# The list ------------------------------------------------------------------------

def show(start_response, ctx, flash=""):
    q = parse_qs(ctx.environ.get("QUERY_STRING", ""))
    pg = page_number(q.get("page", ["1"])[0])
    uid = ctx.user[0]
    conn = db()
    total, open_count = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(done = 0), 0) FROM todo WHERE user_id = ?", (uid,)).fetchone()
    pages = max(1, (total + PER_PAGE - 1) // PER_PAGE)
    pg = min(pg, pages)
    rows = conn.execute("SELECT id, title, done, created FROM todo WHERE user_id = ? "
                        "ORDER BY done, id DESC LIMIT ? OFFSET ?", (uid, PER_PAGE, (pg - 1) * PER_PAGE)).fetchall()
    items = "\n".join(ITEM.format(
        base=ctx.base, id=i, csrf=ctx.csrf, page=pg, title=html.escape(t), cls="done" if d else "",
        toggle="Reopen" if d else "Done", toggle_label="Reopen" if d else "Mark done",
        created=html.escape(c), created_text=html.escape(c.replace("T", " ").replace("Z", " UTC")))
        for i, t, d, c in rows)
    if not rows:
        items = '<li class="muted">Nothing to do. Add something above.</li>'
    pager = ""
    if pages > 1:
        prev_link = '<a href="%s/?page=%d" rel="prev">Previous</a>' % (ctx.base, pg - 1) if pg > 1 else ""
        next_link = '<a href="%s/?page=%d" rel="next">Next</a>' % (ctx.base, pg + 1) if pg < pages else ""
        pager = '<nav class="pager" aria-label="Pages">%s<span>Page %d of %d</span>%s</nav>' % (
            prev_link, pg, pages, next_link)
    summary = "%d item%s, %d open." % (total, "" if total == 1 else "s", open_count)
    main = TODO_MAIN.format(base=ctx.base, csrf=ctx.csrf, items=items, pager=pager, summary=summary,
                            max_title=MAX_TITLE, flash=flash_html(flash))
    return respond(start_response, ctx, "422 Unprocessable Entity" if flash else "200 OK",
                   page(ctx, "To-do list", main))


def change(start_response, ctx, action, parts, form):
    conn = db()
    uid = ctx.user[0]
    pg = page_number(form.get("page"))
    if action == "add":
        title = " ".join(form.get("title", "").split())
        if not title or len(title) > MAX_TITLE:
            ctx.environ["QUERY_STRING"] = ""
            return show(start_response, ctx, flash="An item needs 1 to %d characters." % MAX_TITLE)
        conn.execute("INSERT INTO todo (title, user_id) VALUES (?, ?)", (title, uid))
        pg = 1
    else:
        try:
            item = int(parts[1])
        except ValueError:
            return not_found(start_response, ctx)
        # Another account's item is answered as missing: ids tell nothing.
        if action == "toggle":
            cur = conn.execute("UPDATE todo SET done = 1 - done WHERE id = ? AND user_id = ?", (item, uid))
        else:
            cur = conn.execute("DELETE FROM todo WHERE id = ? AND user_id = ?", (item, uid))
        if cur.rowcount == 0:
            conn.rollback()
            return not_found(start_response, ctx, "No such item")
    conn.commit()
    return redirect(start_response, ctx, "%s/?page=%d" % (ctx.base, pg) if pg > 1 else ctx.base + "/")


def not_found(start_response, ctx, what="Not found"):
    return respond(start_response, ctx, "404 Not Found", page(ctx, what, "<h1>%s</h1>" % what))


def method_not_allowed(start_response, ctx, allow):
    return respond(start_response, ctx, "405 Method Not Allowed", "405 Method Not Allowed\n",
                   "text/plain; charset=utf-8", [("Allow", allow)])


FORMS = {"signin": "signin", "signup": "signup"}
ACTIONS = ("add", "toggle", "delete")


def application(environ, start_response):
    ctx = Ctx(environ)
    path = environ.get("PATH_INFO", "") or "/"
    method = environ["REQUEST_METHOD"]
    parts = path.strip("/").split("/")
    action = parts[0]

    if path == "/api/me":
        if method not in ("GET", "HEAD"):
            return method_not_allowed(start_response, ctx, "GET, HEAD")
        return respond_json(start_response, ctx, "200 OK",
                            {"user": ctx.user[1] if ctx.user else None, "csrf": ctx.csrf})

    posts = path in ("/signin", "/signup", "/signout") or (
        action in ACTIONS and len(parts) == (1 if action == "add" else 2))
    if method in ("GET", "HEAD"):
        if path == "/":
            if not ctx.user:
                return redirect(start_response, ctx, ctx.base + "/signin")
            return show(start_response, ctx)
        if path in ("/signin", "/signup"):
            if ctx.user:
                return redirect(start_response, ctx, ctx.base + "/")
            nxt = parse_qs(environ.get("QUERY_STRING", "")).get("next", [""])[0]
            return auth_page(start_response, ctx, FORMS[action], nxt=safe_next(ctx, nxt))
        if posts:
            return method_not_allowed(start_response, ctx, "POST")
        return not_found(start_response, ctx)
    if path == "/":
        return method_not_allowed(start_response, ctx, "GET, HEAD")
    if not posts:
        return not_found(start_response, ctx)
    if method != "POST":
        return method_not_allowed(start_response, ctx, "POST")

    form = read_form(environ)
    if form is None:
        return respond(start_response, ctx, "413 Request Entity Too Large", page(ctx, "Too large", "<h1>Too large</h1>"))
    if not ctx.csrf_ok(form, action in FORMS):
        msg = "The form expired: reload the page and try again."
        if ctx.wants_json:
            return respond_json(start_response, ctx, "403 Forbidden", {"error": msg, "csrf": ctx.csrf})
        return respond(start_response, ctx, "403 Forbidden", page(ctx, "Forbidden",
                       '<h1>Forbidden</h1>%s<p><a href="%s/">Back to the list</a></p>' % (flash_html(msg), ctx.base)))
    if action == "signin":
        return signin(start_response, ctx, form)
    if action == "signup":
        return signup(start_response, ctx, form)
    if action == "signout":
        return signout(start_response, ctx, form)
    if not ctx.user:
        return redirect(start_response, ctx, ctx.base + "/signin")
    return change(start_response, ctx, action, parts, form)
