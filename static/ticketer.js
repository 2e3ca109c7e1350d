// Live folder counts: refresh the badges every 20 seconds without reloading the page.
(function () {
  var folders = document.getElementById("folders");
  if (!folders || !window.fetch) { return; }
  var url = folders.getAttribute("data-counts-url");
  function refresh() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (counts) {
        if (!counts) { return; }
        document.querySelectorAll("[data-count]").forEach(function (badge) {
          var parts = badge.getAttribute("data-count").split(".");
          var value = (counts[parts[0]] || {})[parts[1]];
          if (typeof value === "number") { badge.textContent = value.toLocaleString("en-US"); }
        });
      })
      .catch(function () {});
  }
  setInterval(refresh, 20000);
})();
