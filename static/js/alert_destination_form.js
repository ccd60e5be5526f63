// The destination form shows the secret field the chosen kind needs (the routing key for PagerDuty, the signing
// secret for a webhook) and hides the other. Without JavaScript both show, and the server ignores the other one.
(function () {
  "use strict";
  var form = document.getElementById("destination-form");
  if (!form) return;
  var select = form.querySelector("select[name=kind]");
  function show() {
    var kind = select ? select.value : form.dataset.kind;
    form.querySelectorAll("[data-kind-only]").forEach(function (el) {
      el.classList.toggle("hidden", el.dataset.kindOnly !== kind);
    });
  }
  if (select) select.addEventListener("change", show);
  show();
})();
