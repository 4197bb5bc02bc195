// Shows why the last login attempt failed.
(function () {
  var q = new URLSearchParams(location.search), el = document.getElementById("login-error");
  var e = q.get("error");
  if (e === "bad") el.textContent = "Wrong password.";
  else if (e === "wait") el.textContent = "Too many attempts: wait " + (parseInt(q.get("s"), 10) || 10) + " s and try again.";
  else return;
  el.hidden = false;
})();
