// Flow form: show only the settings of the engine picked (Flask-Admin renders each field in a .form-group).
(function () {
  var engine = document.getElementById("engine");
  if (!engine) return;
  var settings = {rapidpro: ["base_url", "api_token"], webhook: ["webhook_url", "webhook_secret"], builtin: ["templates"]};
  function show() {
    Object.keys(settings).forEach(function (kind) {
      settings[kind].forEach(function (id) {
        var field = document.getElementById(id);
        if (field) field.closest(".form-group").classList.toggle("d-none", kind !== engine.value);
      });
    });
  }
  engine.addEventListener("change", show);
  show();
})();
