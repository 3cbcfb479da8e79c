// Starts Swagger UI on the document named by #swagger-ui's data-spec-url. A static file, since
// the pages' Content-Security-Policy allows no inline script; Swagger UI itself is served from
// the installed swagger-ui-bundle package, and its validator badge (a call to swagger.io) is
// off, so the page fetches nothing from anywhere but this origin.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) { return; }
  window.ogsimApiDocs = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
}());
