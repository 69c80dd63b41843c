// Small progressive enhancements only; every page works without JavaScript.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var confirmText = form.getAttribute("data-confirm");
  if (confirmText && !window.confirm(confirmText)) { e.preventDefault(); }
});

// Application forms: show only the cities of the chosen jurisdiction (the server checks
// anyway), leave the competent jurisdiction out of the joint list, and show fields such
// as the postal address only when the choice they belong to is made.
(function () {
  function valueOf(form, name) {
    var field = form.elements[name];
    if (!field) { return ""; }
    if (field.length !== undefined && !field.options) {
      for (var i = 0; i < field.length; i++) { if (field[i].checked) { return field[i].value; } }
      return "";
    }
    return field.value;
  }
  function refresh(form) {
    form.querySelectorAll("select[data-filter-by]").forEach(function (sel) {
      var by = valueOf(form, sel.getAttribute("data-filter-by"));
      Array.prototype.forEach.call(sel.options, function (opt) {
        var hide = !!opt.value && !!by && opt.getAttribute("data-j") !== by;
        opt.hidden = hide; opt.disabled = hide;
        if (hide && opt.selected) { sel.value = ""; }
      });
    });
    form.querySelectorAll("select[data-exclude-by]").forEach(function (sel) {
      var by = valueOf(form, sel.getAttribute("data-exclude-by"));
      Array.prototype.forEach.call(sel.options, function (opt) {
        var hide = opt.value === by;
        opt.hidden = hide; opt.disabled = hide;
        if (hide) { opt.selected = false; }
      });
    });
    form.querySelectorAll("[data-show-when]").forEach(function (el) {
      var rule = el.getAttribute("data-show-when").split("=");
      el.hidden = valueOf(form, rule[0]) !== rule[1];
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.application").forEach(function (form) {
      form.addEventListener("change", function () { refresh(form); });
      refresh(form);
    });
  });
})();
