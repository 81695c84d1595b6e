// Comptoir's own script: progressive enhancement only. Every page works without it.
(function () {
  "use strict";
  // installable app: the service worker keeps an offline page
  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js").catch(function () {});
    });
  }
  // htmx requests carry the page's CSRF token (the forms carry it as a field too)
  document.addEventListener("htmx:configRequest", function (e) {
    var m = document.querySelector('meta[name="csrf-token"]');
    if (m) e.detail.headers["X-CSRF-Token"] = m.content;
  });
  // the suggestion list: Escape closes it, arrow down moves into it
  document.addEventListener("keydown", function (e) {
    var box = document.getElementById("suggestions");
    if (!box) return;
    if (e.key === "Escape") box.innerHTML = "";
    if (e.key === "ArrowDown" && document.activeElement && document.activeElement.id === "q") {
      var first = box.querySelector("a");
      if (first) { first.focus(); e.preventDefault(); }
    }
  });
  // a product page: the variant picker shows the chosen variant's price and stock
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!t || t.name !== "sku" || t.type !== "radio") return;
    var out = document.getElementById("variant-info");
    if (out && t.dataset.info) out.textContent = t.dataset.info;
  });
})();
