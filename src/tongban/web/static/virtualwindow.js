/* The room of a virtual-window session (跨省远程虚拟窗口), for both sides.
 *
 * The session lives on the competent node. This page talks only to its own node (the
 * clerk's node relays every call over signed node-to-node queries): it long-polls `sync`
 * (the node answers as soon as the session changes, or after a bound) and posts each step
 * to `act`; both answer the session's view.
 * Audio and video flow browser to browser (WebRTC); the offer, answer and ICE candidates
 * travel as signals through the nodes. The officer always makes the offer; a page that
 * (re)opens a live session says `hello`, and the other side starts over with it.
 */
(function () {
  "use strict";
  // The officer's queue: a long-poll (push.py) that answers as soon as the waiting
  // sessions differ from the ones shown (a new session, or one taken by a colleague), and
  // shows the page anew then.
  // Plain polling instead (no held reads): the benchmark's same-run reference, which it
  // sets in localStorage.
  var PUSH = !(window.localStorage && window.localStorage.getItem("tongban.vw.poll"));
  var queuePage = document.getElementById("vw-queue-page");
  if (queuePage) {
    var shown = queuePage.dataset.waiting || "";
    // Taking a session changes the queue too: the page is leaving then, and a reload
    // would cancel the way to the session's room.
    var leaving = false;
    document.addEventListener("submit", function () { leaving = true; });
    var watch = function () {
      if (leaving) { return; }
      var started = Date.now();
      fetch("/virtual-window/queue/waiting?" + (PUSH ? "wait=1&" : "") + "shown=" + encodeURIComponent(shown),
        { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (leaving) { return; }
          if (body && body.waiting.join(",") !== shown) { window.location.reload(); return; }
          // Answered at once without a change (the node did not hold it): poll instead.
          setTimeout(watch, !PUSH || !body || Date.now() - started < 500 ? 2000 : 0);
        })
        .catch(function () { setTimeout(watch, 4000); });
    };
    setTimeout(watch, PUSH ? 0 : 2000);
    return;
  }
  var root = document.getElementById("vw");
  if (!root) { return; }
  var side = root.dataset.side;
  var base = root.dataset.base;
  var csrf = document.getElementById("vw-csrf").value;
  var openedLive = root.dataset.state === "in_progress";
  var since = 0;
  var signals = Number(root.dataset.signals || 0);
  var state = root.dataset.state;
  var locked = [];
  var pending = {};          // field -> the view seq from which the server has our value
  var timers = {};
  var failures = 0;
  var accepted = false;
  // A read the node answered at once without news (it did not hold it: too many waiting)
  // is asked again after this long; otherwise the next long-poll starts at once.
  var POLL = { queued: 1000, in_progress: side === "officer" ? 300 : 400, submitted: 1500 };

  function $(id) { return document.getElementById(id); }
  function fields() { return Array.prototype.slice.call(document.querySelectorAll("[data-field]")); }

  // The other node (or this one) cannot be reached: what is entered is kept and sent
  // again until it is taken, and the page reads the session again by itself.
  var UNREACHABLE = side === "clerk"
    ? "与主管部门所在节点的网络连接中断，正在重试。已填写的内容会保留，恢复后自动同步。"
    : "与服务器的连接中断，正在重试。已填写的内容会保留，恢复后自动同步。";
  function failureText(err) {
    return !err.status || err.status === 502 || err.status === 503 || err.status === 504
      ? UNREACHABLE : err.message;
  }

  function showError(text) {
    var box = $("vw-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function problemText(body, status) {
    if (body && body.detail) {
      var first = body.errors && body.errors[0] && body.errors[0].message;
      return body.detail + (first && first !== body.detail ? "（" + first + "）" : "");
    }
    return "操作失败（" + status + "），请重试";
  }

  function request(method, path, data) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (data) { init.body = data; }
    return fetch(base + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(problemText(body, r.status));
          err.status = r.status;
          err.type = String(body.type || "");
          throw err;
        }
        return body;
      });
    });
  }

  function formData(extra) {
    var fd = new FormData();
    fd.append("csrf_token", csrf);
    fd.append("since", String(since));
    fd.append("signals", String(signals));
    Object.keys(extra).forEach(function (k) { fd.append(k, extra[k]); });
    return fd;
  }

  function act(op, args, tries) {
    tries = tries || 0;
    return request("POST", "/act", formData({ op: op, args: JSON.stringify(args || {}) }))
      .then(function (view) { showError(""); apply(view); return view; })
      .catch(function (err) {
        // Both sides wrote at once: the loser retries on the record as it now is.
        if (err.status === 409 && /concurrent-change/.test(err.type) && tries < 4) {
          return new Promise(function (ok) { setTimeout(ok, 80 * (tries + 1)); })
            .then(function () { return act(op, args, tries + 1); });
        }
        showError(failureText(err));
        throw err;
      });
  }

  // --- the view ---------------------------------------------------------------------

  function setText(id, text) { var el = $(id); if (el) { el.textContent = text; } }

  function apply(view) {
    var was = state;
    state = view.state;
    root.dataset.state = state;
    setText("vw-state", view.state_label);
    setText("vw-officer", view.officer_name || "等待接入");
    var queueBox = $("vw-queue");
    if (queueBox) {
      queueBox.hidden = state !== "queued";
      setText("vw-position", String(Math.max(0, (view.position || 1) - 1)));
      setText("vw-waited", String(view.waited));
    }
    locked = view.locked || [];
    fields().forEach(function (input) {
      var name = input.dataset.field;
      var mine = document.activeElement === input || (pending[name] !== undefined && view.seq < pending[name]);
      if (!mine) {
        var value = view.form[name] === undefined ? "" : String(view.form[name]);
        if (input.value !== value) { input.value = value; }
      }
      var isLocked = locked.indexOf(name) >= 0;
      input.disabled = state !== "in_progress" || (side === "clerk" && isLocked);
      var note = document.querySelector('[data-locked-note="' + name + '"]');
      if (note) { note.hidden = !isLocked; }
      var btn = document.querySelector('[data-lock="' + name + '"]');
      if (btn) { btn.textContent = isLocked ? "解锁" : "锁定"; btn.disabled = state !== "in_progress"; }
    });
    var id = view.identity;
    var status = id.method
      ? "窗口已登记：" + id.method_label + "，申请人 " + (id.applicant_name || "") + "（" + (id.applicant_identifier || "") + "）" +
        (id.confirmed ? "。主管部门已确认。" : "。等待主管部门确认。")
      : "窗口尚未登记身份核验。";
    setText("vw-identity-status", status);
    var confirmBtn = $("vw-confirm-identity");
    if (confirmBtn) { confirmBtn.disabled = !id.method || id.confirmed || state !== "in_progress"; }
    renderDocs(view.documents);
    renderLicences(view.licences || []);
    (view.events || []).forEach(function (e) {
      if (e.seq <= since) { return; }
      since = e.seq;
      if (e.action === "chat" && e.payload) { addChat(e); }
    });
    if (view.seq > since) { since = view.seq; }
    if (view.case_number) {
      $("vw-case").hidden = false;
      setText("vw-case-number", view.case_number);
    }
    var acceptBtn = $("vw-accept");
    if (acceptBtn) { acceptBtn.disabled = !view.case_number || accepted; }
    var submitBtn = $("vw-submit");
    if (submitBtn) { submitBtn.disabled = state !== "in_progress"; }
    var endBtn = $("vw-end");
    if (endBtn) { endBtn.disabled = state === "ended"; }
    document.querySelectorAll("#vw-identity-form button, #vw-doc-form button, #vw-chat-form button").forEach(function (b) {
      b.disabled = state === "ended" || (state !== "in_progress" && b.closest("#vw-chat-form") === null);
    });
    resident(view);
    (view.signals || []).forEach(function (s) {
      if (s.id <= signals) { return; }
      signals = s.id;
      onSignal(s);
    });
    if (state === "in_progress" && !media.started) { startMedia(was === state && openedLive); }
    if (state === "ended" && media.pc) { media.pc.close(); setText("vw-media-status", "会话已结束。"); }
  }

  function resident(view) {
    var el = $("vw-resident");
    if (!el) { return; }
    var text = {
      queued: "正在为您连线外地主管部门的工作人员，请稍候。",
      in_progress: "主管部门工作人员" + (view.officer_name || "") + "正在通过视频为您办理。请按工作人员提示出示身份证件和材料。",
      submitted: "您的申请已提交" + (view.case_number ? "，办件编号 " + view.case_number : "") + "。办理进度会通过短信通知您。",
      ended: "本次远程办理已结束，感谢您的耐心。"
    }[view.state];
    el.textContent = text || "";
  }

  var docCount = -1;
  var licenceCount = 0;
  /** Licences presented at the counter, as the competent node verified them. */
  function renderLicences(items) {
    if (items.length === licenceCount) { return; }
    licenceCount = items.length;
    var list = $("vw-licences");
    list.textContent = "";
    items.forEach(function (l) {
      var li = document.createElement("li");
      var what = (l.type_name || "电子证照") + (l.licence_id ? "（" + l.licence_id + "）" : "");
      li.textContent = (l.valid ? "✔ 核验通过：" : "✘ 核验未通过：") + what +
        (l.valid ? "" : "——" + (l.reason_text || l.reason || ""));
      li.className = l.valid ? "vw-licence-ok" : "vw-licence-bad";
      li.dataset.valid = l.valid ? "1" : "0";
      list.appendChild(li);
    });
  }

  function renderDocs(docs) {
    if (docs.length === docCount) { return; }
    docCount = docs.length;
    var list = $("vw-docs");
    list.textContent = "";
    docs.forEach(function (d) {
      var li = document.createElement("li");
      var label = d.filename + "（" + Math.ceil(d.size / 1024) + " KB）";
      if (side === "officer") {
        var a = document.createElement("a");
        a.href = base + "/documents/" + d.id;
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = label;
        li.appendChild(a);
      } else {
        li.textContent = label;
      }
      li.dataset.sha256 = d.sha256;
      list.appendChild(li);
    });
    if (!docs.length) { var none = document.createElement("li"); none.className = "hint"; none.textContent = "尚无材料。"; list.appendChild(none); }
  }

  function addChat(e) {
    var li = document.createElement("li");
    li.className = e.side === side ? "vw-mine" : "vw-theirs";
    var who = document.createElement("strong");
    who.textContent = e.actor_name + "：";
    li.appendChild(who);
    li.appendChild(document.createTextNode(e.payload.text));
    $("vw-chat").appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }

  // --- polling and reconnect ------------------------------------------------------------

  var pollTimer = null;
  function schedule(ms) {
    clearTimeout(pollTimer);
    if (state === "ended") { return; }
    pollTimer = setTimeout(poll, ms);
  }

  var polling = false;  // one read in flight at a time
  function poll() {
    if (polling) { return; }
    polling = true;
    var started = Date.now();
    var before = since;
    // After a failure the read does not wait: a held read would keep "unreachable" on
    // the page for the whole wait after the node is back (measured: 15 s).
    var wait = PUSH && !failures;
    request("GET", "/sync?" + (wait ? "wait=1&" : "") + "since=" + since + "&signals=" + signals)
      .then(function (view) {
        polling = false;
        if (failures) { showError(""); }
        failures = 0;
        var news = view.seq > before || (view.signals || []).length > 0;
        apply(view);
        // Read again at once when there was news, when the read was held (push), or
        // when it was the quick read after a failure (the next one waits again).
        var held = PUSH && (news || !wait || Date.now() - started >= 1000);
        schedule(held ? 0 : (POLL[state] || 1500));
      })
      .catch(function (err) {
        polling = false;
        failures += 1;
        // The form is kept on the competent node: reconnecting loses nothing.
        showError(failureText(err));
        schedule(Math.min(3000, 400 * failures));
      });
  }
  window.addEventListener("online", function () { schedule(0); });

  // --- steps --------------------------------------------------------------------------------

  fields().forEach(function (input) {
    var send = function () {
      var name = input.dataset.field;
      var values = {};
      values[name] = input.value;
      pending[name] = Infinity;
      act("form", { values: values }).then(function (view) {
        pending[name] = view.seq;
      }).catch(function (err) {
        // A node unreachable or restarting: send the field again (its latest value) until
        // it is kept; a refusal (a locked field, a value too long) is final.
        if (!err.status || err.status >= 500) {
          clearTimeout(timers[name]);
          timers[name] = setTimeout(send, 1000);
          return;
        }
        delete pending[name];
      });
    };
    // Typing is sent 150 ms after the last key; a choice (a select) at once.
    var later = function (ev) {
      clearTimeout(timers[input.dataset.field]);
      var wait = input.tagName === "SELECT" || ev.type === "change" ? 0 : 150;
      timers[input.dataset.field] = setTimeout(send, wait);
    };
    input.addEventListener("input", later);
    input.addEventListener("change", later);
  });

  document.querySelectorAll("[data-lock]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var name = btn.dataset.lock;
      act(locked.indexOf(name) >= 0 ? "unlock" : "lock", { field: name });
    });
  });

  $("vw-chat-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = $("vw-chat-text");
    if (!input.value.trim()) { return; }
    act("chat", { text: input.value }).then(function () { input.value = ""; });
  });

  var identityForm = $("vw-identity-form");
  if (identityForm) {
    identityForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      act("record_identity", {
        method: $("vw-method").value,
        applicant_name: $("vw-applicant-name").value,
        applicant_identifier: $("vw-applicant-id").value
      });
    });
  }
  var confirmBtn = $("vw-confirm-identity");
  if (confirmBtn) { confirmBtn.addEventListener("click", function () { act("confirm_identity", {}); }); }

  var licenceForm = $("vw-licence-form");
  if (licenceForm) {
    licenceForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = $("vw-presentation").value.trim();
      if (!text) { showError("请扫码或粘贴申请人出示的电子证照"); return; }
      act("licence", { presentation: text })
        .then(function () { $("vw-presentation").value = ""; })
        .catch(function () {});  // act has shown the error
    });
  }

  var docForm = $("vw-doc-form");
  if (docForm) {
    docForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = $("vw-file").files[0];
      if (!file) { showError("请选择要上传的文件"); return; }
      var fd = formData({ material_code: $("vw-material").value });
      fd.append("file", file);
      request("POST", "/documents", fd).then(function (view) {
        showError("");
        $("vw-file").value = "";
        apply(view);
      }).catch(function (err) { showError(err.message); });
    });
  }

  var submitBtn = $("vw-submit");
  if (submitBtn) {
    submitBtn.addEventListener("click", function () {
      submitBtn.disabled = true;
      request("POST", "/submit", formData({})).then(function (view) {
        showError("");
        apply(view);
      }).catch(function (err) { submitBtn.disabled = false; showError(err.message); });
    });
  }

  var acceptBtn = $("vw-accept");
  function accept(tries) {
    request("POST", "/accept", formData({})).then(function (out) {
      accepted = true;
      acceptBtn.disabled = true;
      $("vw-accepted").hidden = false;
      setText("vw-case-number", out.case_number);
      showError("");
    }).catch(function (err) {
      // The case travels from the clerk's node: it may not be here yet.
      if (err.status === 409 && /case-in-transit/.test(err.type) && tries < 20) {
        showError(err.message);
        setTimeout(function () { accept(tries + 1); }, 500);
        return;
      }
      acceptBtn.disabled = false;
      showError(err.message);
    });
  }
  if (acceptBtn) { acceptBtn.addEventListener("click", function () { acceptBtn.disabled = true; accept(0); }); }
  var endBtn = $("vw-end");
  if (endBtn) { endBtn.addEventListener("click", function () { act("end", { reason: "工作人员结束会话" }); }); }

  // --- audio and video (WebRTC) ---------------------------------------------------------------

  var media = { started: false, pc: null, stream: null };
  var mediaReady;
  var mediaReadyResolve;
  mediaReady = new Promise(function (ok) { mediaReadyResolve = ok; });
  var sendChain = Promise.resolve();
  var signalChain = Promise.resolve();
  // Loopback and a LAN need no relay; production names its TURN server (docs/virtual-window.md).
  var ICE_SERVERS = JSON.parse(root.dataset.ice || "[]");

  function mediaStatus(text) { setText("vw-media-status", text); }

  function sendSignal(kind, body) {
    // One at a time and in order: an answer must not overtake its offer.
    sendChain = sendChain.then(function () {
      return act("signal", { kind: kind, body: body || "" }).catch(function () {});
    });
  }

  function newPeer() {
    if (media.pc) { media.pc.close(); }
    var pc = new RTCPeerConnection({ iceServers: ICE_SERVERS });
    media.pc = pc;
    media.stream.getTracks().forEach(function (t) { pc.addTrack(t, media.stream); });
    pc.onicecandidate = function (e) { if (e.candidate) { sendSignal("ice", JSON.stringify(e.candidate)); } };
    pc.ontrack = function (e) { $("vw-remote").srcObject = e.streams[0]; };
    pc.onconnectionstatechange = function () {
      var labels = { connected: "音视频已连接。", connecting: "正在连接音视频……", disconnected: "音视频连接中断，正在恢复……", failed: "音视频连接失败，请刷新页面重试。" };
      if (labels[pc.connectionState]) { mediaStatus(labels[pc.connectionState]); }
    };
    return pc;
  }

  function offer() {
    var pc = newPeer();
    return pc.createOffer()
      .then(function (o) { return pc.setLocalDescription(o); })
      .then(function () { sendSignal("offer", JSON.stringify(pc.localDescription)); });
  }

  function startMedia(rejoined) {
    media.started = true;
    if (!navigator.mediaDevices || !window.RTCPeerConnection) {
      mediaStatus("本浏览器不支持音视频，请使用文字交流。");
      return;
    }
    mediaStatus("正在打开摄像头和麦克风……");
    navigator.mediaDevices.getUserMedia({ audio: true, video: true }).then(function (stream) {
      media.stream = stream;
      $("vw-local").srcObject = stream;
      newPeer();
      mediaReadyResolve();
      mediaStatus("正在连接音视频……");
      if (side === "officer") {
        sendSignal("hello", "");
        return offer();
      }
      if (rejoined) { sendSignal("hello", ""); }
      return null;
    }).catch(function (err) {
      mediaStatus("无法打开摄像头或麦克风（" + err.name + "），请检查设备权限；可先用文字交流。");
    });
  }

  function onSignal(s) {
    signalChain = signalChain.then(function () { return mediaReady; }).then(function () {
      var pc = media.pc;
      if (s.kind === "hello") {
        return side === "officer" ? offer() : newPeer() && null;
      }
      if (s.kind === "offer" && side === "clerk") {
        if (!pc || pc.signalingState !== "stable") { pc = newPeer(); }
        return pc.setRemoteDescription(JSON.parse(s.body))
          .then(function () { return pc.createAnswer(); })
          .then(function (a) { return pc.setLocalDescription(a); })
          .then(function () { sendSignal("answer", JSON.stringify(pc.localDescription)); });
      }
      if (s.kind === "answer" && side === "officer" && pc && pc.signalingState === "have-local-offer") {
        return pc.setRemoteDescription(JSON.parse(s.body));
      }
      if (s.kind === "ice" && pc) {
        return pc.addIceCandidate(JSON.parse(s.body)).catch(function () {});
      }
      return null;
    }).catch(function (err) { mediaStatus("音视频协商失败（" + err.name + "），正在重试……"); });
  }

  /** What the tests and the bench read: frames and packets received on this side. */
  window.vwStats = function () {
    if (!media.pc) { return Promise.resolve({ framesReceived: 0, audioPackets: 0, state: "none" }); }
    return media.pc.getStats().then(function (report) {
      var out = { framesReceived: 0, audioPackets: 0, state: media.pc.connectionState };
      report.forEach(function (r) {
        if (r.type === "inbound-rtp" && r.kind === "video") { out.framesReceived += r.framesReceived || 0; }
        if (r.type === "inbound-rtp" && r.kind === "audio") { out.audioPackets += r.packetsReceived || 0; }
      });
      return out;
    });
  };

  // Recording (the node's setting): the counter's own camera and microphone, a chunk
  // every few seconds while the session is live; each chunk's hash becomes an event.
  var recorder = null;
  var RECORD_SLICE = 5000;
  function uploadChunk(blob) {
    if (!blob || !blob.size) { return; }
    var fd = new FormData();
    fd.append("csrf_token", csrf);
    fd.append("chunk", blob, "chunk.webm");
    request("POST", "/recording", fd).catch(function (err) { showError("录制片段上传失败：" + err.message); });
  }
  function syncRecording() {
    if (root.dataset.recording !== "1" || side !== "clerk" || !window.MediaRecorder) { return; }
    var live = state === "in_progress";
    if (live && media.stream && !recorder) {
      try { recorder = new MediaRecorder(media.stream); } catch (e) { return; }
      recorder.ondataavailable = function (e) { uploadChunk(e.data); };
      recorder.start(RECORD_SLICE);
    } else if (!live && recorder) {
      if (recorder.state !== "inactive") { recorder.stop(); }
      recorder = null;
    }
  }
  setInterval(syncRecording, 1000);

  // Leaving the page (closed, reloaded, navigated away) is a 'leave' event of the
  // session; opening it again records a 'join'. A beacon survives the page's unload.
  window.addEventListener("pagehide", function () {
    var live = state === "in_progress" || state === "submitted";
    if (!live || root.dataset.mine !== "1" || !navigator.sendBeacon) { return; }
    navigator.sendBeacon(base + "/act", formData({ op: "leave", args: "{}" }));
  });

  if (side === "officer" && state === "in_progress") { startMedia(true); }
  poll();
})();
