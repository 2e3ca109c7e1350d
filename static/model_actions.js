// Flask-Admin's bulk actions as buttons (templates/admin/service_list.html): its own dropdown calls
// modelActions.execute from inline onclick attributes, which the app's Content-Security-Policy refuses.
(function () {
  document.querySelectorAll(".model-action").forEach(function (button) {
    button.addEventListener("click", function () {
      window.modelActions.execute(button.getAttribute("data-action"));
    });
  });
})();
