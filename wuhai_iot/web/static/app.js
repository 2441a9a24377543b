// A <select data-autosubmit> submits its form when changed (no inline handlers: the CSP forbids them).
document.addEventListener("change", function (event) {
  const target = event.target;
  if (target.matches && target.matches("select[data-autosubmit]") && target.form) target.form.submit();
});
// A <button data-print> prints the page (the evaluation report on A4).
document.addEventListener("click", function (event) {
  const target = event.target;
  if (target.matches && target.matches("button[data-print]")) window.print();
});

// Live updates (Server-Sent Events): swap the fragments the server sends into the elements with the same ids.
// A fragment whose element holds a note being typed waits until the user leaves the field.
(function () {
  "use strict";
  const url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  const pending = new Map();

  function busy(element) {
    const active = document.activeElement;
    return active && element.contains(active) && active.tagName === "INPUT" && active.value !== "";
  }

  function apply(id, html) {
    const element = document.getElementById(id);
    if (!element) return;
    if (busy(element)) { pending.set(id, html); return; }
    pending.delete(id);
    element.innerHTML = html;
  }

  document.addEventListener("focusout", function () {
    setTimeout(function () { for (const [id, html] of Array.from(pending)) apply(id, html); }, 0);
  });

  let source = null;
  function connect() {
    source = new EventSource(url + "?page=" + encodeURIComponent(location.pathname));
    const dot = document.getElementById("live-dot");
    source.onopen = function () { if (dot) dot.classList.add("on"); };
    source.onerror = function () { if (dot) dot.classList.remove("on"); };
    source.addEventListener("update", function (event) {
      const data = JSON.parse(event.data);
      for (const [id, html] of Object.entries(data.fragments)) apply(id, html);
      for (const [name, value] of Object.entries(data.counts)) {
        document.querySelectorAll('[data-count="' + name + '"]').forEach(function (el) { el.textContent = value; });
      }
      const card = document.getElementById("card-trapped");
      if (card) { card.classList.toggle("alert", data.counts.trapped > 0); card.classList.toggle("ok", data.counts.trapped === 0); }
      const badge = document.getElementById("nav-open-alarms");
      if (badge) { badge.textContent = data.counts.open; badge.hidden = data.counts.open === 0; }
    });
  }
  // A page left open in the back/forward cache must not hold its stream: browsers allow only a few
  // connections per site, and every cached page with a live stream would take one.
  window.addEventListener("pagehide", function () { if (source) { source.close(); source = null; } });
  window.addEventListener("pageshow", function (event) { if (event.persisted || !source) connect(); });
})();
