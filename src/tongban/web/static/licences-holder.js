// Holder binding of e-licences, in the resident's browser (no library, no CDN).
//
// The device key is an ECDSA P-256 key made with WebCrypto as NON-EXTRACTABLE: the page
// can ask the browser to sign with it, but nobody (not this script, not the node) can
// read the private key. It is kept in IndexedDB (a CryptoKey survives there as an
// opaque handle). Only its public JWK is sent to the node, which re-issues the
// holder's licences with it in `cnf.jwk`.
//
// When showing a bound licence, this script appends a KB-JWT (RFC 9901 §4.3) to the
// presentation the node rendered: header {typ: "kb+jwt", alg: "ES256"}, payload
// {iat, aud, nonce, sd_hash}, sd_hash = base64url(SHA-256(presentation up to its last
// "~")). WebCrypto's ECDSA signature is already JOSE's r || s.
(function () {
  "use strict";

  var DB = "tongban-wallet", STORE = "keys", SLOT = "device";
  var ANY_VERIFIER = "urn:tongban:verifier:any";

  function supported() {
    return !!(window.crypto && window.crypto.subtle && window.indexedDB && window.TextEncoder);
  }

  function b64u(bytes) {
    var s = "", b = new Uint8Array(bytes);
    for (var i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function utf8(text) { return new TextEncoder().encode(text); }

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

  function loadKey() {
    return withStore("readonly", function (s) { return s.get(SLOT); });
  }

  function saveKey(record) {
    return withStore("readwrite", function (s) { return s.put(record, SLOT); });
  }

  // RFC 7638 thumbprint of an EC public JWK: SHA-256 over its required members in
  // lexicographic order, as the node computes it.
  function thumbprint(jwk) {
    var canonical = '{"crv":"' + jwk.crv + '","kty":"' + jwk.kty + '","x":"' + jwk.x +
      '","y":"' + jwk.y + '"}';
    return crypto.subtle.digest("SHA-256", utf8(canonical)).then(b64u);
  }

  function createKey() {
    return crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]
    ).then(function (pair) {
      return crypto.subtle.exportKey("jwk", pair.publicKey).then(function (full) {
        var jwk = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
        return thumbprint(jwk).then(function (kid) {
          var record = { privateKey: pair.privateKey, jwk: jwk, thumbprint: kid, alg: "ES256",
                         created: new Date().toISOString() };
          return saveKey(record).then(function () { return record; });
        });
      });
    });
  }

  function kbJwt(presentation, record, nonce) {
    var header = { typ: "kb+jwt", alg: "ES256" };
    return crypto.subtle.digest("SHA-256", utf8(presentation)).then(function (digest) {
      var payload = { iat: Math.floor(Date.now() / 1000), aud: ANY_VERIFIER, nonce: nonce,
                      sd_hash: b64u(digest) };
      var input = b64u(utf8(JSON.stringify(header))) + "." + b64u(utf8(JSON.stringify(payload)));
      return crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, record.privateKey, utf8(input))
        .then(function (sig) { return input + "." + b64u(sig); });
    });
  }

  function randomNonce() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return b64u(bytes);
  }

  function show(el, text) { if (el) { el.textContent = text; el.hidden = !text; } }

  // --- the device page: make the key, register it --------------------------------------
  function devicePage(root) {
    var status = document.getElementById("device-status");
    var button = document.getElementById("device-create");
    var error = document.getElementById("device-error");
    var form = document.getElementById("device-form");
    if (!supported()) {
      show(status, "此浏览器不支持设备密钥（需要 WebCrypto 与 IndexedDB），请使用较新的浏览器。");
      return;
    }
    var active = {};
    root.querySelectorAll("[data-key-thumbprint]").forEach(function (el) {
      if (el.getAttribute("data-active") === "true") { active[el.getAttribute("data-key-thumbprint")] = true; }
    });
    loadKey().then(function (record) {
      if (!record) {
        show(status, "本设备还没有持有人密钥。");
      } else if (active[record.thumbprint]) {
        show(status, "本设备的持有人密钥已登记（指纹 " + record.thumbprint.slice(0, 12) + "…），出示证照时可用本设备签名。");
        root.setAttribute("data-device-registered", "true");
        button.textContent = "重新绑定证照到本设备";
      } else {
        show(status, "本设备已有持有人密钥（指纹 " + record.thumbprint.slice(0, 12) + "…），尚未登记或已停用。");
      }
      button.hidden = false;
      button.disabled = false;
    });
    button.addEventListener("click", function () {
      button.disabled = true;
      show(error, "");
      loadKey().then(function (record) {
        return record && !root.querySelector('[data-key-thumbprint="' + record.thumbprint + '"][data-active="false"]')
          ? record : createKey();
      }).then(function (record) {
        form.querySelector("input[name=jwk]").value = JSON.stringify(record.jwk);
        form.querySelector("input[name=label]").value = deviceLabel();
        form.submit();
      }).catch(function (e) {
        button.disabled = false;
        show(error, "无法生成设备密钥：" + (e && e.message ? e.message : e));
      });
    });
  }

  function deviceLabel() {
    var ua = navigator.userAgent || "";
    var browser = /Edg\//.test(ua) ? "Edge" : /Chrom/.test(ua) ? "Chrome/Chromium" :
      /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "浏览器";
    var os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" :
      /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
    return browser + (os ? "（" + os + "）" : "");
  }

  // --- the presentation page: sign the presentation with the device key -----------------
  function presentPage(root) {
    var button = document.getElementById("bind-sign");
    var error = document.getElementById("bind-error");
    var form = document.getElementById("bound-form");
    if (!supported()) {
      show(error, "此浏览器不支持设备密钥，无法进行持有人绑定。");
      return;
    }
    button.disabled = false;
    button.addEventListener("click", function () {
      show(error, "");
      var typed = (document.getElementById("bind-nonce").value || "").replace(/\s+/g, "").toUpperCase();
      var text = document.getElementById("presentation-text").value.replace(/\s+/g, "");
      loadKey().then(function (record) {
        if (!record || record.thumbprint !== root.getAttribute("data-cnf-kid")) {
          throw new Error("本设备没有这张证照绑定的密钥：请在绑定该证照的设备上出示，或先在“设备绑定”页面登记本设备");
        }
        return kbJwt(text, record, typed || randomNonce());
      }).then(function (kb) {
        form.querySelector("input[name=presentation]").value = text + kb;
        form.querySelector("input[name=nonce]").value = typed;
        form.submit();
      }).catch(function (e) {
        show(error, e && e.message ? e.message : String(e));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var device = document.getElementById("device-binding");
    if (device) { devicePage(device); }
    var present = document.getElementById("holder-binding");
    if (present) { presentPage(present); }
  });
})();
