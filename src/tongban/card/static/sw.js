// Service worker of the dynamic code page: keeps the page and its scripts so that the code
// works offline once loaded (the codes themselves are made by the page, not here).
// Network first (a fresh page when online), the cached copy when offline.
"use strict";
var CACHE = "tongban-card-v1";
var ASSETS = [
  "/my/card/code",
  "/card/assets/card-code.js",
  "/card/assets/card.css",
  "/static/vendor/qrcode-generator/qrcode.js",
  "/static/tongban.css"
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) { return cache.addAll(ASSETS); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) { return n !== CACHE; })
        .map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("fetch", function (event) {
  var req = event.request;
  if (req.method !== "GET") { return; }
  var path = new URL(req.url).pathname;
  if (ASSETS.indexOf(path) < 0) { return; }
  event.respondWith(
    fetch(req).then(function (resp) {
      if (resp.ok && !resp.redirected) {
        var copy = resp.clone();
        caches.open(CACHE).then(function (cache) { cache.put(path, copy); });
      }
      return resp;
    }).catch(function () {
      return caches.match(path).then(function (hit) { return hit || Response.error(); });
    })
  );
});
