// Flow form: show only the settings of the engine picked.
(function () {
  var engine = document.getElementById("engine");
  if (!engine) return;
  function show() {
    document.querySelectorAll(".engine-settings").forEach(function (fieldset) {
      fieldset.classList.toggle("d-none", fieldset.getAttribute("data-engine") !== engine.value);
    });
  }
  engine.addEventListener("change", show);
  show();
})();
