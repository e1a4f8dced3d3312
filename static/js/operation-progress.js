// A background task's page: ask for its progress every couple of seconds and show it; when the
// task ends, reload once so the page shows the result. Without JavaScript a <noscript> refresh
// does the same.
(function () {
  "use strict";
  var box = document.querySelector("[data-operation-progress]");
  if (!box || box.dataset.finished === "yes" || !window.fetch) return;
  var bar = box.querySelector("progress");
  var delay = 1500;

  function show(name, value) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (!el) return;
    el.textContent = typeof value === "number" ? value.toLocaleString() : (value || "");
    if (name === "last_error") el.hidden = !value;
  }

  function poll() {
    fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        if (data.finished) { window.location.reload(); return; }
        bar.max = data.total || 1;
        bar.value = data.processed;
        bar.textContent = data.percent + "%";
        ["processed", "percent", "changed", "skipped", "errors", "status_label", "last_error"].forEach(function (name) {
          show(name, data[name]);
        });
        Object.keys(data.counts || {}).forEach(function (name) {
          var el = box.querySelector('[data-count="' + name + '"]');
          if (el) el.textContent = data.counts[name].toLocaleString();
        });
        delay = 1500;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);  // the server is busy or the connection dropped: ask less often
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
