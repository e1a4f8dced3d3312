/* The form builder's page behaviour, all optional: without it every input shows and the
   preview stays empty, and the pages still work.
   - Inputs that only some kinds of field use are hidden for the other kinds.
   - The live preview: as the staff member types, the page's form (unsaved) is posted to the
     preview endpoint and the answer shown in a sandboxed frame.
   - Copy buttons on the Share page. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 350;

  function currentKind(form) {
    var input = form.querySelector("[name=kind]");
    return input ? input.value : "";
  }

  function showInputsFor(form) {
    var kind = currentKind(form);
    form.querySelectorAll("[data-kinds]").forEach(function (block) {
      block.hidden = kind !== "" && block.getAttribute("data-kinds").split(" ").indexOf(kind) === -1;
    });
  }

  function fitFrame(frame) {
    try {
      var doc = frame.contentDocument;
      if (doc && doc.documentElement) {
        frame.style.height = Math.max(doc.documentElement.scrollHeight + 4, 200) + "px";
      }
    } catch (e) { /* another origin: keep the stylesheet's height */ }
  }

  function livePreview(form) {
    var frame = document.querySelector("[data-preview-frame]");
    var status = document.getElementById("preview-status");
    if (!frame) { return; }
    var timer = null, sent = 0, shown = 0;
    frame.dataset.updates = "0";
    frame.addEventListener("load", function () { fitFrame(frame); });

    function refresh() {
      var data = new FormData(form);
      data.delete("logo");  // the file goes with Save, not with every keystroke
      if (form.dataset.previewFieldId) { data.set("preview_field_id", form.dataset.previewFieldId); }
      if (form.dataset.previewNewField) { data.set("preview_new_field", "1"); }
      var mine = ++sent;
      fetch(form.dataset.previewUrl, {
        method: "POST", body: data, credentials: "same-origin",
        headers: {"X-Requested-With": "fetch"}
      }).then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      }).then(function (html) {
        if (mine < shown) { return; }  // an older answer arriving late
        shown = mine;
        frame.srcdoc = html;
        frame.dataset.updates = String(Number(frame.dataset.updates) + 1);
        if (status) { status.textContent = "As the public sees it; it follows what you type."; }
      }).catch(function () {
        if (status) { status.textContent = "The preview could not be updated. Your changes are not lost: save them."; }
      });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, DEBOUNCE_MS);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    refresh();
  }

  function copyText(source, status) {
    function done(ok) {
      if (status) {
        status.textContent = ok ? "Copied. Paste it where you need it." : "Select the text and copy it with Ctrl+C (⌘C on a Mac).";
      }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(function () { done(true); }, function () {
        source.select(); done(false);
      });
      return;
    }
    source.focus();
    source.select();
    try { done(document.execCommand("copy")); } catch (e) { done(false); }
  }

  document.querySelectorAll("form[data-preview-url]").forEach(function (form) {
    showInputsFor(form);
    var kind = form.querySelector("select[name=kind]");
    if (kind) { kind.addEventListener("change", function () { showInputsFor(form); }); }
    livePreview(form);
  });

  // On-submit actions: an input that matters only for one answer of another shows with it
  // ("owner_mode=fixed", "send_confirmation=y", "portal_login!=none").
  // Several conditions joined by "&" must all hold.
  function conditionHolds(form, condition) {
    if (condition.indexOf("&") >= 0) {
      return condition.split("&").every(function (part) { return conditionHolds(form, part); });
    }
    var match = /^(\w+)(!?=)(.*)$/.exec(condition);
    if (!match) { return true; }
    var value = "";
    form.querySelectorAll('[name="' + match[1] + '"]').forEach(function (input) {
      if ((input.type === "radio" || input.type === "checkbox") ? input.checked : true) { value = input.value; }
    });
    return match[2] === "=" ? value === match[3] : value !== match[3];
  }
  document.querySelectorAll("form[data-conditional]").forEach(function (form) {
    function update() {
      form.querySelectorAll("[data-shown-if]").forEach(function (block) {
        block.hidden = !conditionHolds(form, block.getAttribute("data-shown-if"));
      });
    }
    form.addEventListener("change", update);
    update();
  });

  // Moving a field reloads the page; the focus goes back to the button pressed (or, at the
  // end of the list, its twin), so a keyboard user can press it again.
  var MOVED = "portico.builder.moved";
  document.querySelectorAll("button[data-move]").forEach(function (button) {
    button.form.addEventListener("submit", function () {
      try { window.sessionStorage.setItem(MOVED, button.getAttribute("data-move")); } catch (e) { /* private mode */ }
    });
  });
  var moved = null;
  try { moved = window.sessionStorage.getItem(MOVED); window.sessionStorage.removeItem(MOVED); } catch (e) { /* private mode */ }
  if (moved) {
    var parts = moved.split("-"), twin = parts[0] + "-" + (parts[1] === "up" ? "down" : "up");
    var target = document.querySelector('button[data-move="' + moved + '"]:not([disabled])') ||
                 document.querySelector('button[data-move="' + twin + '"]:not([disabled])');
    // After load: scrolling to the page's #field-… anchor would otherwise take the focus back.
    if (target) { window.addEventListener("load", function () { window.setTimeout(function () { target.focus(); }, 0); }); }
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      if (source) { copyText(source, status); }
    });
  });
}());
