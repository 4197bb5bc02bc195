// Loaded in <head>, before the page paints, so a dark page never flashes white.
// A stored choice wins; otherwise the system's prefers-color-scheme decides. The
// "js" class lets the stylesheet collapse what only a script can open again.
(function () {
  var themes = ["light", "dark", "sepia", "ocean", "contrast"];
  var root = document.documentElement;
  root.classList.add("js");
  var stored = null;
  try { stored = localStorage.getItem("theme"); } catch (e) { /* storage blocked */ }
  var dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = themes.indexOf(stored) >= 0 ? stored : (dark ? "dark" : "light");
})();
