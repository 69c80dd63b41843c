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

// Behaviour that used to sit in inline handlers: the Content-Security-Policy runs scripts
// only from this file, so pages mark elements with data-* attributes instead.
document.addEventListener("click", function (e) {
  var el = e.target.closest ? e.target.closest("[data-print],[data-back],[data-uncheck]") : null;
  if (!el) { return; }
  if (el.hasAttribute("data-print")) { window.print(); }
  if (el.hasAttribute("data-back") && window.history.length > 1) {
    e.preventDefault(); window.history.back();
  }
  if (el.hasAttribute("data-uncheck")) {
    var form = el.form || document;
    form.querySelectorAll("input[name='" + el.getAttribute("data-uncheck") + "']")
      .forEach(function (r) { r.checked = false; });
  }
});

document.addEventListener("DOMContentLoaded", function () {
  // Work-order report: fill latitude/longitude from the device's position.
  var locate = document.getElementById("locate");
  if (locate && navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (p) {
        document.getElementById("lat").value = p.coords.latitude.toFixed(6);
        document.getElementById("lon").value = p.coords.longitude.toFixed(6);
      }, function () { window.alert("无法获取当前位置，请手动填写"); });
    });
  }
  // Licence presentation: copy the presentation text.
  var copy = document.getElementById("copy-presentation");
  if (copy) {
    copy.addEventListener("click", function () {
      var t = document.getElementById("presentation-text");
      t.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(t.value); } else { document.execCommand("copy"); }
      copy.textContent = "已复制";
    });
  }
});
