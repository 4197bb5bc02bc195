// Loaded in <head>, before the page paints, so a dark page never flashes white.
// A stored choice wins; otherwise the system's prefers-color-scheme decides.
(function () {
  var stored = null;
  try { stored = localStorage.getItem("theme"); } catch (e) { /* storage blocked */ }
  var dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = stored === "dark" || stored === "light" ? stored : (dark ? "dark" : "light");
})();
