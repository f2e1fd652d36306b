/* Tally Portal behaviour: toasts, the shared modal, and error notices. Loaded as a static file:
   the Content-Security-Policy allows no inline script. */
(function () {
  "use strict";

  function showToasts(root) {
    root.querySelectorAll(".toast:not(.toast-started)").forEach(function (el) {
      el.classList.add("toast-started");
      el.addEventListener("hidden.bs.toast", function () { el.remove(); });
      bootstrap.Toast.getOrCreateInstance(el).show();
    });
  }

  function addToast(message) {
    var box = document.createElement("div");
    box.className = "toast align-items-center text-bg-danger border-0";
    box.setAttribute("role", "alert");
    var row = document.createElement("div");
    row.className = "d-flex";
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = message;
    row.appendChild(body);
    box.appendChild(row);
    document.getElementById("toasts").appendChild(box);
    showToasts(document.getElementById("toasts"));
  }

  htmx.onLoad(function (root) { showToasts(root.querySelectorAll ? root : document); });

  var modalEl = document.getElementById("modal");
  var modalContent = document.getElementById("modal-content");

  document.body.addEventListener("htmx:afterSwap", function (event) {
    // A form loaded into the modal opens it; the (empty) answer to a successful save does not.
    if (event.detail.target === modalContent && event.detail.requestConfig.verb === "get") {
      bootstrap.Modal.getOrCreateInstance(modalEl).show();
    }
  });
  document.body.addEventListener("closeModal", function () {
    bootstrap.Modal.getOrCreateInstance(modalEl).hide();
  });
  modalEl.addEventListener("hidden.bs.modal", function () { modalContent.replaceChildren(); });
  modalEl.addEventListener("shown.bs.modal", function () {
    var first = modalEl.querySelector("[autofocus]");
    if (first) { first.focus(); }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  document.body.addEventListener("htmx:sendError", function () {
    addToast("The portal did not answer. Check the connection; nothing was saved.");
  });
})();
