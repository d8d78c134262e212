// Refract operators' dashboard: refreshes each live panel from its fragment URL.
//
// Every element with data-live="<url>" is re-fetched every few seconds and swapped in when
// it changed (a fragment may send X-Version; then only a new version is swapped in). A
// 401 means the session ended: back to the login page. The header's "live" badge says
// when the page last heard from the server, so staff can tell a frozen screen.
(function () {
  "use strict";
  var EVERY_MS = 2000;

  function markLive(ok) {
    var badge = document.getElementById("live-state");
    if (!badge) return;
    badge.textContent = ok ? "live" : "connection lost, retrying";
    badge.className = ok ? "live-state" : "live-state stale";
  }

  function follow(panel) {
    var url = panel.getAttribute("data-live");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.href = document.body.getAttribute("data-login");
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          var version = response.headers.get("X-Version");
          return response.text().then(function (html) {
            if (version === null || version !== panel.getAttribute("data-version")) {
              panel.innerHTML = html;
              if (version !== null) panel.setAttribute("data-version", version);
            }
            markLive(true);
          });
        })
        .catch(function () { markLive(false); })
        .then(function () { window.setTimeout(tick, EVERY_MS); });
    }
    window.setTimeout(tick, EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panels = document.querySelectorAll("[data-live]");
    for (var i = 0; i < panels.length; i++) follow(panels[i]);
  });
})();
