// Small progressive enhancements only; every page works without JavaScript.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var confirmText = form.getAttribute("data-confirm");
  if (confirmText && !window.confirm(confirmText)) { e.preventDefault(); }
});
