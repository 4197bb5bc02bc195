// Applies the saved colour theme before the page paints (no flash of the wrong one).
(function () {
  var t = null;
  try { t = localStorage.getItem("gantry-theme"); } catch (e) {}
  if (!t) t = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  document.documentElement.dataset.theme = t;
})();
