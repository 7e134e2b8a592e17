/* Otklik's small script: everything works without it; it only adds speed and keys.
   Event delegation on document, so content swapped in by htmx needs no set-up. */
(function () {
  "use strict";

  /* htmx skips 4xx/5xx bodies (base.html's responseHandling). Two exceptions: an error
     message the server sends to #flash (HX-Retarget), and a boosted navigation, which
     should show the error page (404 for another institution's question) like a normal
     link would. */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var d = event.detail;
    if (!d.xhr || d.xhr.status < 400) return;
    var retarget = d.xhr.getResponseHeader("HX-Retarget");
    if (retarget === "#flash" || (d.boosted && d.xhr.status !== 422)) {
      d.shouldSwap = true;
      d.isError = false;
    }
  });

  /* Polls (`data-when-visible`) skip their turn while the tab is hidden. In JavaScript
     here rather than an hx-trigger filter: filters are eval'd, and the
     Content-Security-Policy allows no eval (htmx's allowEval is off). */
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (document.visibilityState !== "visible" && elt && elt.hasAttribute("data-when-visible")) {
      event.preventDefault();
    }
  });

  /* The error summary takes focus so that a screen reader announces it (GOV.UK). */
  function focusErrors(root) {
    var summary = (root || document).querySelector("[data-autofocus]");
    if (summary) summary.focus();
  }
  document.addEventListener("DOMContentLoaded", function () { focusErrors(document); });
  document.addEventListener("htmx:afterSettle", function (event) { focusErrors(event.detail.elt); });

  /* --- the queue: j/k move, Enter opens, r replies, / searches -------------------- */
  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue .qcard"));
  }
  function current(list) {
    var active = document.activeElement;
    var i = list.indexOf(active);
    if (i >= 0) return i;
    for (var k = 0; k < list.length; k++) if (list[k].classList.contains("is-current")) return k;
    return -1;
  }
  function move(list, i) {
    if (!list.length) return;
    i = Math.max(0, Math.min(list.length - 1, i));
    list.forEach(function (c) { c.classList.remove("is-current"); });
    list[i].classList.add("is-current");
    list[i].focus();
    list[i].scrollIntoView({ block: "nearest" });
  }
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (!document.getElementById("queue")) return;
    var list = cards();
    var i = current(list);
    if (event.key === "j") { move(list, i + 1); event.preventDefault(); }
    else if (event.key === "k") { move(list, i < 0 ? 0 : i - 1); event.preventDefault(); }
    else if (event.key === "Enter" && i >= 0 && document.activeElement !== list[i]) {
      list[i].click(); event.preventDefault();
    }
    else if (event.key === "r" && i >= 0) {
      window.location.href = list[i].getAttribute("href") + "#reply"; event.preventDefault();
    }
    else if (event.key === "/") {
      var search = document.getElementById("q");
      if (search) { search.focus(); search.select(); event.preventDefault(); }
    }
  });

  /* The tab title carries the count of open work: «(12) Очередь — Отклик». The queue
     fragment says it in data-title; the polite live region says what changed. */
  document.addEventListener("htmx:afterSettle", function () {
    var queue = document.getElementById("queue");
    if (queue && queue.dataset.title) document.title = queue.dataset.title;
  });
})();
