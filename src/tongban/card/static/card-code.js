// The resident's dynamic code (电子社保卡码), made in the browser (no CDN, no server per code).
//
// The device key is an ECDSA P-256 key made with WebCrypto as NON-EXTRACTABLE: the page can
// ask the browser to sign with it, nobody can read it. It is kept in IndexedDB with the
// credential the holder's node issued for its public half (POST /api/v1/me/card/credential,
// valid 24 h). Every 30 s the page signs a new code itself:
//
//   code = credential || uint32 time (big-endian Unix seconds) || ECDSA signature (r || s)
//          over "tongban/card/code/1\0" || credential || time
//
// and shows it as the QR text "TBC1:" + base45(code) (docs/card-format.md). A service
// worker (/my/card/sw.js) keeps this page and its scripts, so it works offline once loaded,
// until the credential expires.
(function () {
  "use strict";

  var DB = "tongban-card", STORE = "devices";
  var PREFIX = new TextEncoder().encode("tongban/card/code/1\u0000");
  var B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  var RENEW_BEFORE_MS = 12 * 3600 * 1000;

  var root = document.getElementById("card-code");
  if (!root) { return; }
  var account = root.getAttribute("data-account");
  var endpoint = root.getAttribute("data-credential-url");
  var csrf = root.getAttribute("data-csrf");
  var canvas = document.getElementById("card-qr");
  var statusEl = document.getElementById("code-status");
  var countdownEl = document.getElementById("code-countdown");
  var validEl = document.getElementById("code-valid-until");
  var infoEl = document.getElementById("code-holder");
  var refresh = 30, timer = null, record = null;

  function say(text, bad) {
    statusEl.textContent = text;
    statusEl.className = bad ? "alert error" : "hint";
  }

  function b64uDecode(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }

  function b45(bytes) {
    var out = "";
    for (var i = 0; i + 1 < bytes.length; i += 2) {
      var n = bytes[i] * 256 + bytes[i + 1];
      out += B45[n % 45] + B45[Math.floor(n / 45) % 45] + B45[Math.floor(n / 2025)];
    }
    if (bytes.length % 2) {
      var last = bytes[bytes.length - 1];
      out += B45[last % 45] + B45[Math.floor(last / 45)];
    }
    return out;
  }

  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i++) { n += parts[i].length; }
    var out = new Uint8Array(n), at = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
    return out;
  }

  function uint32(value) {
    var b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, false);
    return b;
  }

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function withStore(mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = fn(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(req && req.result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function load() { return withStore("readonly", function (s) { return s.get(account); }); }
  function save(rec) { return withStore("readwrite", function (s) { return s.put(rec, account); }); }

  function newKey() {
    return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
      .then(function (pair) {
        return crypto.subtle.exportKey("jwk", pair.publicKey).then(function (full) {
          return { privateKey: pair.privateKey, jwk: { kty: full.kty, crv: full.crv, x: full.x, y: full.y } };
        });
      });
  }

  function enrol(rec) {
    return fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ jwk: rec.jwk })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          var err = new Error(body.detail || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        }
        rec.credential = body.credential;
        rec.expiresAt = Date.parse(body.expires_at);
        rec.info = body;
        return save(rec).then(function () { return rec; });
      });
    });
  }

  function showInfo(rec) {
    var i = rec.info || {};
    var parts = [i.holder_name, i.city_name, i.age_band].concat(i.concessions || []);
    infoEl.textContent = parts.filter(Boolean).join(" · ");
    validEl.textContent = new Date(rec.expiresAt).toLocaleString("zh-CN", { hour12: false });
    refresh = i.refresh_seconds || 30;
  }

  function draw(text) {
    var qr = qrcode(0, "M");
    qr.addData(text, "Alphanumeric");
    qr.make();
    var n = qr.getModuleCount(), quiet = 4, cell = Math.max(2, Math.floor(300 / (n + 2 * quiet)));
    var size = (n + 2 * quiet) * cell;
    canvas.width = size; canvas.height = size;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, size, size);
    ctx.fillStyle = "#000";
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        if (qr.isDark(r, c)) { ctx.fillRect((c + quiet) * cell, (r + quiet) * cell, cell, cell); }
      }
    }
    canvas.setAttribute("data-code", text);
  }

  function makeCode(rec) {
    var now = Math.floor(Date.now() / 1000);
    if (rec.expiresAt <= Date.now()) {
      canvas.removeAttribute("data-code");
      say(navigator.onLine ? "凭证已过期，正在重新获取……" : "凭证已过期，请联网后刷新本页。", true);
      if (navigator.onLine) { start(true); }
      return;
    }
    var cred = b64uDecode(rec.credential);
    var t = uint32(now);
    crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, rec.privateKey, concat([PREFIX, cred, t]))
      .then(function (sig) {
        draw("TBC1:" + b45(concat([cred, t, new Uint8Array(sig)])));
        say(navigator.onLine ? "请将此码对准闸机或扫码设备。" : "离线使用中：码仍可正常核验。", false);
        var left = refresh;
        countdownEl.textContent = left;
        clearInterval(timer);
        timer = setInterval(function () {
          left -= 1;
          if (left <= 0) { clearInterval(timer); makeCode(rec); return; }
          countdownEl.textContent = left;
        }, 1000);
      })
      .catch(function (e) { say("无法生成码：" + e.message, true); });
  }

  function start(force) {
    load().then(function (rec) {
      if (rec && rec.privateKey) { return rec; }
      return newKey();
    }).then(function (rec) {
      var stale = !rec.credential || rec.expiresAt - Date.now() < RENEW_BEFORE_MS;
      if ((stale || force) && navigator.onLine) {
        return enrol(rec).catch(function (e) {
          if (e.status === 409 || e.status === 403) {
            rec.credential = null;
            return save(rec).then(function () { throw e; });
          }
          if (rec.credential) { return rec; }  // offline-ish failure: keep the one we have
          throw e;
        });
      }
      if (!rec.credential) { throw new Error("首次使用须联网获取凭证"); }
      return rec;
    }).then(function (rec) {
      record = rec;
      showInfo(rec);
      makeCode(rec);
    }).catch(function (e) {
      canvas.removeAttribute("data-code");
      say(e.message, true);
    });
  }

  if (!(window.crypto && crypto.subtle && window.indexedDB)) {
    say("本浏览器不支持电子社保卡码（需要 WebCrypto 与 IndexedDB）。", true);
    return;
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/my/card/sw.js", { scope: "/my/card/" }).catch(function () {});
  }
  window.addEventListener("online", function () { if (record) { makeCode(record); } });
  window.addEventListener("offline", function () { if (record) { say("离线使用中：码仍可正常核验。", false); } });
  start(false);
})();
