// The hospital counter's catalogue search as the clerk types (no library, no CDN).
//
// The page already holds the treatment jurisdiction's catalogue (the <datalist> the code
// inputs use); this script lists the items whose code or name contains what is typed,
// without a round trip. Without the script, the search form's button does the same on
// the server (GET ?q=), so nothing depends on it.
(function () {
  "use strict";

  var input = document.querySelector("[data-catalogue-search]");
  var list = document.getElementById("catalogue");
  var out = document.getElementById("catalogue-found");
  if (!input || !list || !out) { return; }
  var MAX = 20;
  var items = Array.prototype.map.call(list.options, function (o) {
    return { code: o.value, label: o.textContent || "" };
  });

  function render(q) {
    out.textContent = "";
    q = q.trim().toLowerCase();
    if (!q) { return; }
    var found = items.filter(function (it) {
      return it.code.toLowerCase().indexOf(q) >= 0 || it.label.toLowerCase().indexOf(q) >= 0;
    }).slice(0, MAX);
    if (!found.length) {
      var none = document.createElement("p");
      none.className = "hint";
      none.textContent = "就医地目录中没有与“" + input.value.trim() + "”相符的项目。";
      out.appendChild(none);
      return;
    }
    var ul = document.createElement("ul");
    ul.className = "catalogue-found";
    found.forEach(function (it) {
      var li = document.createElement("li");
      var code = document.createElement("code");
      code.textContent = it.code;
      li.appendChild(code);
      li.appendChild(document.createTextNode(" " + it.label));
      ul.appendChild(li);
    });
    out.appendChild(ul);
  }

  input.addEventListener("input", function () { render(input.value); });
})();
