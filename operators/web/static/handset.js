// The handset page reloads itself when a prompt or a message arrives or goes: it polls the
// page's JSON twin (data-handset-feed) and compares its version. A static file, as the pages'
// Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var phone = document.querySelector("[data-handset-feed]");
  if (!phone) { return; }
  var feed = phone.getAttribute("data-handset-feed");
  var version = phone.getAttribute("data-version");
  window.setInterval(function () {
    window.fetch(feed, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.version !== version) { window.location.reload(); }
      })
      .catch(function () { /* the operator may be restarting: try again next tick */ });
  }, 2000);
}());
