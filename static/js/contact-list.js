// Contact list: ticking a row updates the selection at once (no "Update selection" click),
// so it survives paging. Without JavaScript the form's button does the same.
(function () {
  "use strict";
  var form = document.querySelector("[data-selection-form]");
  if (!form || !window.fetch) return;
  var saveButton = form.querySelector(".selection-save");
  if (saveButton) saveButton.hidden = true;
  var status = document.getElementById("selection-status");

  form.addEventListener("change", function (event) {
    if (event.target.name !== "ids") return;
    var row = event.target.closest("td");
    var body = new FormData();
    body.append("csrf_token", form.querySelector("[name=csrf_token]").value);
    body.append("change", "page");
    body.append("page_ids", event.target.value);
    if (event.target.checked) body.append("ids", event.target.value);
    fetch(form.action, {method: "POST", body: body, headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.json().then(function (data) { return [response.ok, data]; }); })
      .then(function (result) {
        var ok = result[0], data = result[1];
        if (!ok) {
          event.target.checked = !event.target.checked;
          status.textContent = data.error ? data.error.message : "The selection could not be changed.";
          return;
        }
        status.textContent = data.count.toLocaleString() + " selected";
        if (row) row.dataset.saved = "yes";
      })
      .catch(function () {
        event.target.checked = !event.target.checked;
        status.textContent = "The selection could not be changed; check your connection.";
      });
  });
})();
