// The dashboard's median-times panel: exact medians read every ticket of the period, so they are
// fetched after the page has painted and put in place (server-rendered HTML with SVG charts).
(function () {
  var panel = document.getElementById("medians-panel");
  if (!panel || !window.fetch) { return; }
  fetch(panel.getAttribute("data-src"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
    .then(function (html) { panel.innerHTML = html; })
    .catch(function () {
      var note = document.getElementById("medians-loading");
      if (note) { note.firstChild.textContent = "The medians could not be loaded. "; }
    });
})();
