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

  /* A table that scrolls sideways in its own box (a wide report on a phone) must scroll from the
     keyboard too: the box takes focus (tabindex 0, so arrow keys scroll it) while, and only while,
     it has something to scroll. Checked on load, after every htmx swap and on resize. */
  function keyboardScrollable() {
    document.querySelectorAll(".table-responsive, .report-table").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroll-focus", "");
      } else if (!scrolls && box.hasAttribute("data-scroll-focus")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    });
  }
  keyboardScrollable();
  document.body.addEventListener("htmx:afterSettle", keyboardScrollable);
  window.addEventListener("resize", keyboardScrollable);

  /* Live panels say "live" only while their stream is healthy. The server sends a panel when it
     changes, a "heartbeat" event every few seconds while it listens to the database, and "stale"
     when it does not. A page that hears nothing for data-stale-after seconds, gets "stale" or
     loses the connection shows "reconnecting — figures as of HH:MM:SS EST" on every badge of that
     connection, and returns to "live" by itself: with the next panel, or with the next heartbeat
     when it had only gone quiet. */
  var live = new Map();          // [data-live] element -> its state
  var sources = new WeakSet();   // EventSources already listened to

  function two(n) { return (n < 10 ? "0" : "") + n; }
  // The office's clock (its zone is in a meta tag), as every time the portal prints ("updated
  // 21:04:05 EST" on the panels themselves), whatever the zone of the browser's machine.
  var officeZone = (document.querySelector('meta[name="office-time-zone"]') || {}).content || "UTC";
  var officeClock = null;
  try {
    officeClock = new Intl.DateTimeFormat("en-US", {
      timeZone: officeZone, hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit",
      timeZoneName: "short"
    });
  } catch (e) { officeClock = null; }  // a browser without the zone: UTC, said so
  function clock(date) {
    if (!officeClock) {
      return two(date.getUTCHours()) + ":" + two(date.getUTCMinutes()) + ":" + two(date.getUTCSeconds()) + " UTC";
    }
    var part = {};
    officeClock.formatToParts(date).forEach(function (p) { part[p.type] = p.value; });
    return part.hour + ":" + part.minute + ":" + part.second + " " + part.timeZoneName;
  }

  function liveState(el) {
    var state = live.get(el);
    if (!state) {
      state = { seen: Date.now(), fresh: new Date(), stale: false, why: null };
      live.set(el, state);
    }
    return state;
  }

  /* Beside each badge, the newest change its panels carry ("· last change 10:35:12 EST"), or, when
     the server has heard of none since it started listening, how long they have been quiet ("· no
     change since 10:40:03 EST"): a quiet feed must not look like a dead one. Hidden while stale. */
  function newest(el, attribute) {
    var found = null;
    el.querySelectorAll("[" + attribute + "]").forEach(function (node) {
      var when = new Date(node.getAttribute(attribute));
      if (!isNaN(when.getTime()) && (!found || when > found)) { found = when; }
    });
    return found;
  }

  function showChanged(el) {
    var latest = newest(el, "data-changed");
    var quiet = newest(el, "data-quiet-since");
    var text = latest ? "· last change " + clock(latest) : quiet ? "· no change since " + clock(quiet) : "";
    el.querySelectorAll("[data-live-changed]").forEach(function (target) { target.textContent = text; });
  }

  function showLive(el, state) {
    el.classList.toggle("live-stale", state.stale);
    el.querySelectorAll("[data-live-changed]").forEach(function (target) {
      target.classList.toggle("d-none", state.stale);
    });
    el.querySelectorAll("[data-live-badge]").forEach(function (badge) {
      badge.textContent = state.stale ? "reconnecting — figures as of " + clock(state.fresh) : "live";
      badge.classList.toggle("text-bg-warning", state.stale);
      badge.classList.toggle("text-bg-light", !state.stale);
    });
  }

  function markStale(el, why) {
    var state = liveState(el);
    if (!state.stale || why !== "quiet") { state.why = why; }
    if (!state.stale) { state.stale = true; showLive(el, state); }
  }

  function markHeard(el, fresh) {
    var state = liveState(el);
    state.seen = Date.now();
    if (state.stale && !fresh && state.why !== "quiet") { return; }  // only new figures end that
    state.fresh = new Date();
    if (state.stale) { state.stale = false; state.why = null; showLive(el, state); }
  }

  htmx.onLoad(function (root) {
    var scope = root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("[data-live]")) { liveState(scope); }
    scope.querySelectorAll("[data-live]").forEach(liveState);
  });

  document.body.addEventListener("htmx:sseOpen", function (event) {
    var el = event.target.closest("[data-live]");
    var source = event.detail && event.detail.source;
    if (!el || !source || sources.has(source)) { return; }
    sources.add(source);
    source.addEventListener("heartbeat", function () { markHeard(el, false); });
    source.addEventListener("stale", function () { markStale(el, "server"); });
    // The session ended (signed out elsewhere, deactivated): the page itself must go to sign-in.
    source.addEventListener("signed-out", function () { source.close(); window.location.reload(); });
  });
  document.body.addEventListener("htmx:sseMessage", function (event) {
    var el = event.target.closest("[data-live]");
    if (!el) { return; }
    if (event.detail && event.detail.type === "refused") { markStale(el, "server"); }
    else { markHeard(el, true); showChanged(el); }
  });
  document.body.addEventListener("htmx:sseError", function (event) {
    var el = event.target.closest("[data-live]");
    if (el) { markStale(el, "error"); }
  });

  window.setInterval(function () {
    live.forEach(function (state, el) {
      if (!document.body.contains(el)) { live.delete(el); return; }
      var limit = 1000 * (parseFloat(el.getAttribute("data-stale-after")) || 15);
      if (Date.now() - state.seen > limit) { markStale(el, "quiet"); }
    });
  }, 1000);
})();
