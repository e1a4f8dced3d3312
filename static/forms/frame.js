/* Runs inside the embedded kickoff form (/f/<slug>/embed). It tells the host page how tall
   the form is, so embed.js there can size the iframe, and learns from the host page where the
   visitor is (source URL, UTM and other URL parameters for hidden fields). */
(function () {
  "use strict";
  if (window.parent === window) return;
  var PREFIX = "portico-form:";
  var source = document.querySelector("[data-kf-source]");
  if (source && !source.value && document.referrer) source.value = document.referrer.slice(0, 2000);

  // The height is no secret, and the host's origin is not known here: any parent may read it.
  function send(message) { window.parent.postMessage(message, "*"); }
  var lastHeight = 0;
  function reportHeight() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight) {
      lastHeight = height;
      send({ type: PREFIX + "height", height: height });
    }
  }

  window.addEventListener("message", function (event) {
    // Only the page that frames us speaks for the host page.
    if (event.source !== window.parent || !event.data || event.data.type !== PREFIX + "page") return;
    var url = typeof event.data.url === "string" ? event.data.url.slice(0, 2000) : "";
    if (!url) return;
    if (source) source.value = url;
    var params;
    try { params = new URL(url).searchParams; } catch (e) { return; }
    document.querySelectorAll("input[type=hidden][data-url-parameter]").forEach(function (input) {
      var value = params.get(input.getAttribute("data-url-parameter"));
      if (!input.value && value) input.value = value.slice(0, 500);
    });
    lastHeight = 0;
    reportHeight();
  });

  if ("ResizeObserver" in window) new ResizeObserver(reportHeight).observe(document.documentElement);
  window.addEventListener("load", reportHeight);
  send({ type: PREFIX + "ready" });
  reportHeight();

  // After a submission with a redirect, the host page navigates (the frame cannot).
  var redirect = document.querySelector("[data-kf-redirect]");
  if (redirect) send({ type: PREFIX + "redirect", url: redirect.href });
})();
