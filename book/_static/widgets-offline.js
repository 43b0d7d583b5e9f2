// The widget manager (embed-amd.js) asks RequireJS where its own files live and
// would look for its fonts next to each page. Point it at the copy in _static.
(function () {
  var staticRoot = document.currentScript.src.replace(/[^/]*$/, "");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": staticRoot + "vendor" } });
})();
