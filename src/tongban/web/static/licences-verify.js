// The licence verification page (证照核验): scan the holder's QR code with the device's
// camera instead of pasting its text.
//
// Decoding: the browser's BarcodeDetector where it has one with QR support, otherwise
// jsQR (vendored under /static/vendor/jsqr, no CDN) on frames drawn into a canvas.
// What the code holds:
//  - a presentation (the SD-JWT text shown by 出示证照): put in the box and sent;
//  - a short link to this platform (a holder's `/v/<token>` short link, a verification
//    address such as a result document's QR, or this page with the text in
//    `presentation=`): opened here;
//  - anything else: refused in plain words, nothing opened.
// Without JavaScript or a camera the page works as before: paste the text.
(function () {
  "use strict";

  var root = document.getElementById("verify-scan");
  if (!root) { return; }
  var startBtn = document.getElementById("verify-scan-start");
  var stopBtn = document.getElementById("verify-scan-stop");
  var video = document.getElementById("verify-scan-video");
  var canvas = document.getElementById("verify-scan-canvas");
  var statusEl = document.getElementById("verify-scan-status");
  var box = document.getElementById("presentation");
  var form = box && box.form;
  var stream = null, detector = null, timer = null, done = false;

  root.hidden = false;

  function say(text, bad) {
    statusEl.textContent = text;
    statusEl.className = bad ? "alert error" : "hint";
  }

  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.hidden = true; stopBtn.hidden = true; startBtn.hidden = false;
  }

  // What a scanned code means; exported for the browser test (window.tongbanVerifyScan).
  function classify(value) {
    value = (value || "").trim();
    if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+~/.test(value)) {
      return { kind: "presentation", text: value };
    }
    var url = null;
    try { url = new URL(value); } catch (e) { url = null; }
    if (url && url.origin === window.location.origin) {
      var carried = url.searchParams.get("presentation");
      if (url.pathname === "/licences/verify" && carried) { return { kind: "presentation", text: carried }; }
      return { kind: "link", href: url.pathname + url.search + url.hash };
    }
    if (url) { return { kind: "foreign", text: "这是其他网站的链接，不是本平台的核验码，未打开。" }; }
    return { kind: "unknown", text: "未能识别这个二维码：请扫描持证人“出示证照”页面上的二维码。" };
  }

  function found(value) {
    if (done || !value) { return; }
    var what = classify(value);
    if (what.kind === "presentation") {
      done = true; stop();
      box.value = what.text;
      say("已读取证照，正在核验……");
      form.requestSubmit ? form.requestSubmit() : form.submit();
    } else if (what.kind === "link") {
      done = true; stop();
      say("已识别本平台的核验链接，正在打开……");
      window.location.assign(what.href);
    } else {
      say(what.text, true);
    }
  }

  function tick() {
    if (!stream || video.readyState < 2) { return; }
    if (detector) {
      detector.detect(video).then(function (codes) {
        if (codes.length) { found(codes[0].rawValue); }
      }).catch(function () { /* a frame that could not be read */ });
      return;
    }
    if (typeof window.jsQR !== "function") { return; }
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) { return; }
    var scale = Math.min(1, 1000 / Math.max(w, h));
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
      say("此浏览器无法使用摄像头，请在下方粘贴证照文本。", true);
      return;
    }
    done = false;
    say("正在开启摄像头……");
    pickDecoder().then(function (d) {
      detector = d;
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      video.hidden = false; startBtn.hidden = true; stopBtn.hidden = false;
      return video.play();
    }).then(function () {
      say("请将持证人的出示码对准摄像头。");
      timer = setInterval(tick, 200);
    }).catch(function () {
      stop();
      say("无法开启摄像头（可能未授权），请在下方粘贴证照文本。", true);
    });
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", function () { stop(); say("已关闭摄像头。"); });
  window.tongbanVerifyScan = { classify: classify, found: found };
})();
