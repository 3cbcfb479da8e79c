// The developer portal's API console: Swagger UI (served from the installed package) on the
// sandbox's CAMARA document, and a form that gets a token for one of the developer's
// applications and hands it to Swagger UI, so "Try it out" calls carry it. A static file, since
// the pages' Content-Security-Policy allows no inline script; the form's CSRF field goes with
// the POST, and the token lives only in this page's memory.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) { return; }
  var scheme = root.getAttribute("data-bearer-scheme");
  var loaded = false;
  var waiting = null;

  function authorize(token) {
    if (!loaded) { waiting = token; return; }
    ui.preauthorizeApiKey(scheme, token);
  }

  var ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: false,
    validatorUrl: null,
    tryItOutEnabled: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    onComplete: function () {
      loaded = true;
      root.setAttribute("data-loaded", "true");
      if (waiting) { authorize(waiting); waiting = null; }
    }
  });
  window.ogsimConsole = ui;

  var form = document.getElementById("console-token");
  var status = document.getElementById("console-token-status");
  if (!form || !status) { return; }

  function say(text, kind) {
    status.textContent = text;
    status.className = kind;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    say("Asking for a token…", "muted");
    window.fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString()
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      var body = answer.body || {};
      if (!answer.ok || !body.access_token) {
        say("No token: " + (body.error_description || body.error || "the portal refused"), "error");
        return;
      }
      authorize(body.access_token);
      status.setAttribute("data-client-id", body.client_id);
      say("Token for " + body.client_id + " (" + body.scope + "), valid " + body.expires_in +
          " s: every \"Try it out\" call below carries it.", "ok");
    }).catch(function () {
      say("The portal did not answer; try again.", "error");
    });
  });
}());
