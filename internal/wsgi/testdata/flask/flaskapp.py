"""A small Flask app for gantry's WSGI tests: forms, JSON, sessions, uploads, streaming."""
from flask import Flask, Response, jsonify, request, session, stream_with_context, url_for

app = Flask(__name__)
app.secret_key = "gantry-test-only"


@app.route("/")
def index():
    return "Hello from Flask; login is at %s" % url_for("login")


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        session["user"] = request.form["user"]
        return "welcome %s" % session["user"]
    return "who are you? %s" % session.get("user", "nobody")


@app.route("/json", methods=["POST"])
def echo_json():
    data = request.get_json()
    return jsonify(received=data, length=request.content_length)


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    return "%s %d" % (f.filename, len(f.read()))


@app.route("/stream")
def stream():
    def gen():
        for i in range(3):
            yield "line %d\n" % i
    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.route("/boom")
def boom():
    raise KeyError("flask boom")
