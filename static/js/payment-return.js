// The page a buyer returns to from Stripe Checkout: ask every couple of seconds whether Stripe
// has confirmed the payment, then show that it has. Without JavaScript a <noscript> refresh
// asks instead.
(function () {
  "use strict";
  var box = document.querySelector("[data-payment-return]");
  if (!box || box.dataset.confirmed === "yes" || !window.fetch) return;
  var delay = 2000, tries = 0;

  function poll() {
    tries += 1;
    fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.confirmed) {
          box.querySelector("[data-pending]").hidden = true;
          box.querySelector("[data-confirmed]").hidden = false;
          box.dataset.confirmed = "yes";
          return;
        }
        if (tries >= 30) { box.querySelector("[data-slow]").hidden = false; delay = 10000; }
        window.setTimeout(poll, delay);
      })
      .catch(function () { delay = Math.min(delay * 2, 30000); window.setTimeout(poll, delay); });
  }
  window.setTimeout(poll, delay);
})();
