/* Portico kickoff forms on your own site. Paste beside the form's iframe:
     <iframe src="https://<you>.<portico>/f/<form>/embed" data-portico-form title="…"
             style="width:100%;border:0"></iframe>
     <script src="https://<you>.<portico>/static/forms/embed.js" async></script>
   It resizes each such iframe to its form's height, tells the form which page it is on (for
   the source URL and UTM values), and follows the form's redirect after a submission.
   Messages are accepted only from the iframe's own window and origin. */
(function () {
  "use strict";
  var PREFIX = "portico-form:";

  function originOf(frame) {
    try { return new URL(frame.src, window.location.href).origin; } catch (e) { return null; }
  }

  function frames() { return document.querySelectorAll("iframe[data-portico-form]"); }

  function tellPage(frame) {
    var origin = originOf(frame);
    if (origin && frame.contentWindow) {
      frame.contentWindow.postMessage({ type: PREFIX + "page", url: window.location.href }, origin);
    }
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data.type !== "string" || data.type.indexOf(PREFIX) !== 0) return;
    Array.prototype.forEach.call(frames(), function (frame) {
      if (event.source !== frame.contentWindow || event.origin !== originOf(frame)) return;
      if (data.type === PREFIX + "ready") {
        tellPage(frame);
      } else if (data.type === PREFIX + "height" && typeof data.height === "number" && data.height > 0) {
        frame.style.height = Math.min(Math.ceil(data.height), 20000) + "px";
      } else if (data.type === PREFIX + "redirect" && typeof data.url === "string" && /^https?:\/\//i.test(data.url)) {
        window.location.assign(data.url);
      }
    });
  });

  // A frame that loaded before this script ran has already said "ready": greet it now.
  Array.prototype.forEach.call(frames(), tellPage);
})();
