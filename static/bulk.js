// Bulk actions on the ticket list: select the page, count the selection, show only the inputs
// the chosen action needs. Everything also works without JavaScript (the server confirms).
(function () {
  var form = document.getElementById("bulk-form");
  if (!form) { return; }
  var pageBox = document.getElementById("select-page");
  var rows = Array.prototype.slice.call(document.querySelectorAll(".select-ticket"));
  var scopeSelected = document.getElementById("scope-selected");
  var scopeAll = document.getElementById("scope-all");
  var selectedCount = document.getElementById("selected-count");
  var action = document.getElementById("bulk-action");

  function checked() { return rows.filter(function (box) { return box.checked; }).length; }

  function refresh() {
    var n = checked();
    selectedCount.textContent = n + " selected";
    if (pageBox) {
      pageBox.checked = n > 0 && n === rows.length;
      pageBox.indeterminate = n > 0 && n < rows.length;
    }
  }

  function showInputs() {
    form.querySelectorAll("[data-for]").forEach(function (input) {
      var wanted = input.getAttribute("data-for").split(" ").indexOf(action.value) !== -1;
      input.classList.toggle("d-none", !wanted);
    });
  }

  if (pageBox) {
    pageBox.addEventListener("change", function () {
      rows.forEach(function (box) { box.checked = pageBox.checked; });
      if (pageBox.checked) { scopeSelected.checked = true; }
      refresh();
    });
  }
  rows.forEach(function (box) {
    box.addEventListener("change", function () {
      scopeSelected.checked = true;
      refresh();
    });
  });
  action.addEventListener("change", showInputs);
  form.addEventListener("submit", function (event) {
    if (scopeSelected.checked && checked() === 0 && !scopeAll.checked) {
      event.preventDefault();
      selectedCount.textContent = "Select some tickets first (or choose all matching)";
    }
  });
  refresh();
  showInputs();
})();
