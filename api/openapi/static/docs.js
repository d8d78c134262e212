// Starts ReDoc (redoc.standalone.js, served beside this file) on the page's #redoc
// element, for the document its data-spec-url names. The system's own fonts: the page
// fetches nothing from another host, so it works on a venue network with no internet.
(function () {
  "use strict";
  var element = document.getElementById("redoc");
  var sans = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans KR', sans-serif";
  var mono = "ui-monospace, 'SF Mono', Menlo, Consolas, 'Liberation Mono', monospace";
  window.Redoc.init(
    element.getAttribute("data-spec-url"),
    {
      theme: {
        typography: {
          fontFamily: sans,
          headings: { fontFamily: sans },
          code: { fontFamily: mono },
        },
      },
    },
    element
  );
})();
