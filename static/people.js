// Manage logins: "Add another" appends an empty invite row (email + role), up to the form's maximum.
(function () {
  var rows = document.getElementById("invite-rows");
  var button = document.getElementById("add-invite-row");
  if (!rows || !button) { return; }
  var max = parseInt(rows.getAttribute("data-max-rows"), 10) || 20;
  button.classList.remove("d-none");
  button.addEventListener("click", function () {
    var all = rows.querySelectorAll(".invite-row");
    if (all.length >= max) { button.disabled = true; return; }
    var copy = all[all.length - 1].cloneNode(true);
    var index = all.length;
    copy.querySelectorAll("input, select, label").forEach(function (el) {
      ["id", "name", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/rows-\d+-/, "rows-" + index + "-")); }
      });
      el.classList.remove("is-invalid");
      if (el.tagName === "INPUT") { el.value = ""; }
    });
    copy.querySelectorAll(".invalid-feedback").forEach(function (el) { el.remove(); });
    rows.appendChild(copy);
    copy.querySelector("input").focus();
    if (index + 1 >= max) { button.disabled = true; }
  });
})();
