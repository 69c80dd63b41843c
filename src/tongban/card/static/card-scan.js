// The venue staff's scan page (扫码核验): reads the resident's dynamic code with the
// device's camera and asks this node for the verdict (POST /api/v1/card/scan), which it
// shows large: 通过 (and the benefit, and why) or 未通过 (and the reason).
//
// Decoding: the browser's BarcodeDetector where it has one with QR support (Chrome on
// Android and macOS), otherwise jsQR (vendored under /static/vendor/jsqr, no CDN) on
// frames drawn into a canvas. A typed or pasted code (or a scanner gun typing into the
// box) goes the same way. The same code is not sent twice within a few seconds (the
// camera sees it in every frame); the node refuses a real replay itself.
(function () {
  "use strict";

  var root = document.getElementById("card-scan");
  if (!root) { return; }
  var endpoint = root.getAttribute("data-scan-url");
  var csrf = root.getAttribute("data-csrf");
  var venue = root.getAttribute("data-venue");
  var video = document.getElementById("scan-video");
  var canvas = document.getElementById("scan-canvas");
  var startBtn = document.getElementById("scan-start");
  var stopBtn = document.getElementById("scan-stop");
  var statusEl = document.getElementById("scan-status");
  var form = document.getElementById("scan-form");
  var input = document.getElementById("scan-code");
  var box = document.getElementById("scan-verdict");
  var PREFIX = "TBC1:";
  var REPEAT_MS = 4000;

  var stream = null, detector = null, busy = false, last = "", lastAt = 0, timer = null;

  function say(text, bad) {
    statusEl.textContent = text;
    statusEl.className = bad ? "alert error" : "hint";
  }

  function text(id, value) {
    var el = document.getElementById(id);
    el.textContent = value || "";
    el.hidden = !value;
  }

  function show(v) {
    box.hidden = false;
    box.className = "verdict " + (v.admitted ? "ok" : "bad");
    box.setAttribute("data-admitted", v.admitted ? "true" : "false");
    box.setAttribute("data-reason", v.reason || "");
    text("verdict-head", v.admitted ? (v.flagged ? "通过（已标记）" : "通过") : "未通过");
    text("verdict-benefit", v.admitted ? (v.benefit || "请通行") : v.reason_label);
    text("verdict-why", v.why);
    // The time says which scan this verdict is for (the next holder may show the same).
    var at = new Date().toLocaleTimeString("zh-CN", { hour12: false });
    text("verdict-holder", (v.holder ? v.holder.city_name + " · " + v.holder.description + " · " : "") + at);
    box.scrollIntoView({ block: "nearest" });
  }

  function submit(code) {
    code = (code || "").trim();
    if (!code || busy) { return; }
    var now = Date.now();
    if (code === last && now - lastAt < REPEAT_MS) { return; }
    last = code; lastAt = now; busy = true;
    say("正在核验……");
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ code: code, venue_code: venue })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || ("HTTP " + r.status)); }
        show(body);
        say(stream ? "可继续扫描下一位。" : "已核验。");
      });
    }).catch(function (e) {
      say("无法核验：" + e.message + "（请检查网络后重试）", true);
      last = "";
    }).then(function () { busy = false; });
  }

  function found(value) {
    if (value && value.indexOf(PREFIX) === 0) { submit(value); }
  }

  function tick() {
    if (!stream || video.readyState < 2) { return; }
    if (detector) {
      detector.detect(video).then(function (codes) {
        for (var i = 0; i < codes.length; i++) { found(codes[i].rawValue); }
      }).catch(function () { /* a frame that could not be read */ });
      return;
    }
    if (typeof window.jsQR !== "function") { return; }
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) { return; }
    var scale = Math.min(1, 800 / Math.max(w, h));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
    var hit = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" });
    if (hit) { found(hit.data); }
  }

  function pickDecoder() {
    if (!("BarcodeDetector" in window)) { return Promise.resolve(null); }
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      return formats.indexOf("qr_code") >= 0 ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
    }).catch(function () { return null; });
  }

  function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("此浏览器无法使用摄像头，请在下方输入码。", true);
      return;
    }
    say("正在开启摄像头……");
    pickDecoder().then(function (d) {
      detector = d;
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      video.hidden = false;
      startBtn.hidden = true;
      stopBtn.hidden = false;
      root.setAttribute("data-decoder", detector ? "barcode-detector" : "jsqr");
      return video.play();
    }).then(function () {
      say("请将电子社保卡码对准摄像头。");
      timer = window.setInterval(tick, 250);
    }).catch(function (e) {
      stop();
      say("无法开启摄像头：" + (e && e.name === "NotAllowedError" ? "未获得摄像头权限" : (e && e.message) || e) + "。可在下方输入码。", true);
    });
  }

  function stop() {
    if (timer) { window.clearInterval(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.hidden = true;
    startBtn.hidden = false;
    stopBtn.hidden = true;
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", function () { stop(); say("摄像头已关闭。"); });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    last = "";
    submit(input.value);
    input.value = "";
    input.focus();
  });
  var stat = document.getElementById("scan-result-static");
  if (stat) { stat.hidden = true; }
  root.setAttribute("data-ready", "true");
})();
