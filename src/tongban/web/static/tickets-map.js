// Work-order report: a click on the app's own map sets the latitude/longitude and the
// city (no library, no tile service). The SVG's units are kilometres in the server's
// local projection (x east, y south of LAT0/LON0); its data attributes carry the scale.
// Without this script the form still takes a chosen city and an address, or typed
// coordinates; the server checks the point lies inside the city either way.
(function () {
  "use strict";

  var svg = document.getElementById("report-map");
  var lat = document.getElementById("lat");
  var lon = document.getElementById("lon");
  var city = document.getElementById("city_code");
  var pin = document.getElementById("report-map-pin");
  if (!svg || !lat || !lon || !svg.getScreenCTM) { return; }
  var mLon = parseFloat(svg.dataset.mPerDegLon), mLat = parseFloat(svg.dataset.mPerDegLat);
  var lon0 = parseFloat(svg.dataset.lon0), lat0 = parseFloat(svg.dataset.lat0);

  function place(x, y) {
    pin.setAttribute("cx", x.toFixed(2));
    pin.setAttribute("cy", y.toFixed(2));
    pin.classList.add("shown");
  }

  function choose(code) {
    var areas = svg.querySelectorAll(".area.city");
    for (var i = 0; i < areas.length; i++) {
      areas[i].classList.toggle("chosen", areas[i].getAttribute("data-code") === code);
    }
    if (city) { city.value = code; }
  }

  // A point already typed (or kept after a refused submission) is shown.
  var la = parseFloat(lat.value), lo = parseFloat(lon.value);
  if (isFinite(la) && isFinite(lo)) {
    place((lo - lon0) * mLon / 1000, -(la - lat0) * mLat / 1000);
  }

  svg.addEventListener("click", function (ev) {
    var pt = svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    lon.value = (p.x * 1000 / mLon + lon0).toFixed(6);
    lat.value = (-p.y * 1000 / mLat + lat0).toFixed(6);
    place(p.x, p.y);
    var t = ev.target;
    var onCity = t && t.getAttribute && t.getAttribute("data-kind") === "city";
    choose(onCity ? t.getAttribute("data-code") : "");
    // The first click zooms to the city, so the next one can be placed precisely.
    if (onCity && svg.getAttribute("viewBox") === whole) {
      var b = t.getBBox(), pad = Math.max(b.width, b.height) * 0.08;
      svg.setAttribute("viewBox", [b.x - pad, b.y - pad, b.width + 2 * pad, b.height + 2 * pad].join(" "));
      pin.setAttribute("r", String(Math.max(b.width, b.height) / 90));
      if (reset) { reset.hidden = false; }
    }
  });

  var whole = svg.getAttribute("viewBox");
  var reset = document.getElementById("report-map-whole");
  if (reset) {
    reset.addEventListener("click", function () {
      svg.setAttribute("viewBox", whole);
      pin.setAttribute("r", "4");
      reset.hidden = true;
    });
  }
})();
