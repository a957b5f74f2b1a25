// Live pages: poll the account's ledger version and, when it changes, swap in the page's fresh [data-live] parts.
// No framework and no build step; the pages work without it (reload by hand).
(function () {
  "use strict";
  var body = document.body;
  var versionUrl = body.dataset.liveUrl;
  if (!versionUrl) { return; }
  var POLL_MS = 1000;
  var busy = false;

  function swapLiveParts(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live]").forEach(function (part) {
      var replacement = fresh.getElementById(part.id);
      if (replacement) { part.replaceWith(document.importNode(replacement, true)); }
    });
    body.dataset.liveVersion = fresh.body.dataset.liveVersion || body.dataset.liveVersion;
    var status = document.getElementById("live-status");
    if (status) { status.textContent = "Live: updated at " + new Date().toISOString().slice(11, 19) + " UTC."; }
  }

  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(versionUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state || state.version === body.dataset.liveVersion) { return null; }
        return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (html) { if (html) { swapLiveParts(html); } });
      })
      .catch(function () { /* the server may be restarting: the next tick tries again */ })
      .then(function () { busy = false; });
  }

  window.setInterval(poll, POLL_MS);
})();
