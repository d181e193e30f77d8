/*
 * vigil-capture.js — Vigil browser capture (privacy mode). No dependencies.
 *
 * Records HOW someone types and moves the pointer in this page, never WHAT:
 * a key event leaves the page only as (time, down/up, coarse key class,
 * flags). The class is one of: unknown, letter, digit, space, punctuation,
 * modifier, edit, enter, navigation, tab, function. No key value, code,
 * character, field content or DOM information is ever read into a batch.
 *
 *   <script src="https://vigil-gateway.example/vigil-capture.js"></script>
 *   <script>
 *     VigilCapture.start({
 *       endpoint: "https://vigil-gateway.example/v1/batches",
 *       token: "<tenant ingest token>",
 *       user: "<pseudonymous user id>",
 *       device: "<stable browser/workstation id>",
 *     });
 *   </script>
 *
 * Batches follow Vigil's capture flush rule: a batch is sent 100 ms after its
 * first event or at 64 events, whichever comes first; an idle, visible page
 * sends a heartbeat every 2 s; leaving the page sends a session-end batch.
 */
(function (global) {
  "use strict";
  var MAX_EVENTS = 64, SPAN_MS = 100, HEARTBEAT_MS = 2000;
  var MAX_PER_REQUEST = 32, MAX_QUEUE = 2000;
  // keytoken.Class numbering (wire format).
  var C = { unknown: 0, letter: 1, digit: 2, space: 3, punct: 4, modifier: 5, edit: 6, enter: 7, nav: 8, tab: 9, fn: 10 };
  var PUNCT = { Minus: 1, Equal: 1, BracketLeft: 1, BracketRight: 1, Backslash: 1, Semicolon: 1, Quote: 1,
    Backquote: 1, Comma: 1, Period: 1, Slash: 1, IntlBackslash: 1, IntlRo: 1, IntlYen: 1, NumpadDecimal: 1,
    NumpadComma: 1, NumpadAdd: 1, NumpadSubtract: 1, NumpadMultiply: 1, NumpadDivide: 1, NumpadEqual: 1 };
  var MODS = { ShiftLeft: 1, ShiftRight: 1, ControlLeft: 1, ControlRight: 1, AltLeft: 1, AltRight: 1,
    MetaLeft: 1, MetaRight: 1, OSLeft: 1, OSRight: 1, CapsLock: 1, AltGraph: 1 };
  var NAV = { ArrowUp: 1, ArrowDown: 1, ArrowLeft: 1, ArrowRight: 1, Home: 1, End: 1, PageUp: 1, PageDown: 1 };

  // classOf maps the physical key position (KeyboardEvent.code) to a coarse
  // class. The code is used here and dropped: it never enters a batch.
  function classOf(code) {
    if (!code) return C.unknown;
    if (/^Key[A-Z]$/.test(code)) return C.letter;
    if (/^(Digit|Numpad)[0-9]$/.test(code)) return C.digit;
    if (code === "Space") return C.space;
    if (PUNCT[code]) return C.punct;
    if (MODS[code]) return C.modifier;
    if (code === "Backspace" || code === "Delete") return C.edit;
    if (code === "Enter" || code === "NumpadEnter") return C.enter;
    if (NAV[code]) return C.nav;
    if (code === "Tab") return C.tab;
    return C.fn;
  }

  function randomId() {
    var b = new Uint8Array(12);
    (global.crypto || global.msCrypto).getRandomValues(b);
    var s = "b-";
    for (var i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
    return s;
  }

  function Capture(opts) {
    if (!opts || !opts.endpoint || !opts.token || !opts.user || !opts.device) {
      throw new Error("VigilCapture.start: endpoint, token, user and device are required");
    }
    this.o = opts;
    this.session = opts.session || randomId();
    this.seq = 0;
    this.keys = []; this.ptr = []; this.t0 = 0; this.timer = 0;
    this.lastKeyT = 0; this.lastPtrT = 0; this.lastSent = Date.now();
    this.queue = []; this.sending = false; this.backoff = 250;
    this.sentBatches = 0; this.dropped = 0;
    this.x = 0; this.y = 0;
    this.handlers = [];
    this.listen();
    var self = this;
    this.hb = setInterval(function () { self.heartbeat(); }, 500);
  }

  // Event time in µs since the epoch: the page's time origin plus the
  // event's high-resolution timestamp.
  Capture.prototype.usOf = function (e) {
    var rel = (e && typeof e.timeStamp === "number" && e.timeStamp > 0) ? e.timeStamp : performance.now();
    return Math.round((performance.timeOrigin + rel) * 1000);
  };

  Capture.prototype.on = function (target, type, fn) {
    var opt = { capture: true, passive: true };
    target.addEventListener(type, fn, opt);
    this.handlers.push([target, type, fn, opt]);
  };

  Capture.prototype.listen = function () {
    var self = this;
    var key = function (action) {
      return function (e) {
        var t = Math.max(self.usOf(e), self.lastKeyT);
        self.lastKeyT = t;
        var f = 0;
        if (e.repeat) f |= 2;          // KeyFlagAutoRepeat
        if (!e.isTrusted) f |= 1;      // KeyFlagInjected: synthetic (script) event
        self.add(t, true, { t: t, a: action, c: classOf(e.code), f: f });
      };
    };
    this.on(global, "keydown", key(0));
    this.on(global, "keyup", key(1));
    var btn = function (b) { return b === 0 ? 1 : b === 2 ? 2 : b === 1 ? 3 : 0; };
    var ptr = function (kind) {
      return function (e) {
        var t = Math.max(self.usOf(e), self.lastPtrT);
        self.lastPtrT = t;
        if (typeof e.clientX === "number") { self.x = Math.round(e.clientX); self.y = Math.round(e.clientY); }
        var b = 0;
        if (kind === 1 || kind === 2) b = btn(e.button);
        if (kind === 3) b = e.deltaY < 0 ? 1 : 2;
        self.add(t, false, { t: t, k: kind, x: self.x, y: self.y, b: b });
      };
    };
    this.on(global, "pointermove", ptr(0));
    this.on(global, "pointerdown", ptr(1));
    this.on(global, "pointerup", ptr(2));
    this.on(global, "wheel", ptr(3));
    this.on(global, "pagehide", function () { self.stop(); });
  };

  Capture.prototype.add = function (t, isKey, ev) {
    if (this.keys.length + this.ptr.length > 0 && t >= this.t0 + SPAN_MS * 1000) this.flush(this.t0 + SPAN_MS * 1000);
    if (this.keys.length + this.ptr.length === 0) {
      this.t0 = t;
      var self = this;
      this.timer = setTimeout(function () { self.flush(self.t0 + SPAN_MS * 1000); }, SPAN_MS);
    }
    (isKey ? this.keys : this.ptr).push(ev);
    if (this.keys.length + this.ptr.length >= MAX_EVENTS) this.flush(t);
  };

  Capture.prototype.flush = function (sentUS, flags) {
    clearTimeout(this.timer); this.timer = 0;
    if (this.keys.length + this.ptr.length === 0 && !flags) return;
    var b = { seq: this.seq++, sent_us: Math.round(sentUS), flags: flags || 0, keys: this.keys, pointer: this.ptr };
    this.keys = []; this.ptr = [];
    this.lastSent = Date.now();
    this.queue.push(b);
    if (this.queue.length > MAX_QUEUE) { this.queue.shift(); this.dropped++; }
    this.send(false);
  };

  Capture.prototype.heartbeat = function () {
    if (document.visibilityState !== "visible" || this.keys.length + this.ptr.length > 0) return;
    if (Date.now() - this.lastSent >= HEARTBEAT_MS) this.flush(Date.now() * 1000, 2);
  };

  Capture.prototype.send = function (keepalive) {
    keepalive = keepalive || this.stopped;
    if (this.sending || this.queue.length === 0) return;
    var self = this;
    var batch = this.queue.slice(0, MAX_PER_REQUEST);
    var body = JSON.stringify({ user: this.o.user, device: this.o.device, session: this.session, batches: batch });
    this.sending = true;
    fetch(this.o.endpoint, {
      method: "POST", keepalive: !!keepalive, credentials: "omit",
      headers: { "Authorization": "Bearer " + this.o.token, "Content-Type": "application/json" },
      body: body
    }).then(function (r) {
      self.sending = false;
      if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429 && r.status !== 408)) {
        // Accepted, or refused for good (a bug or misconfiguration): either way drop them.
        if (!r.ok && global.console) console.warn("vigil-capture: gateway refused batches:", r.status);
        self.queue.splice(0, batch.length);
        self.sentBatches += r.ok ? batch.length : 0;
        self.backoff = 250;
        if (self.queue.length) self.send(false);
        return;
      }
      self.retry();
    }, function () { self.sending = false; self.retry(); });
  };

  Capture.prototype.retry = function () {
    var self = this;
    setTimeout(function () { self.send(false); }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 30000);
  };

  // stop ends the session: pending events, then a session-end batch.
  Capture.prototype.stop = function () {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.hb);
    for (var i = 0; i < this.handlers.length; i++) {
      var h = this.handlers[i];
      h[0].removeEventListener(h[1], h[2], h[3]);
    }
    if (this.keys.length + this.ptr.length > 0) this.flush(Math.min(this.t0 + SPAN_MS * 1000, Date.now() * 1000));
    this.flush(Date.now() * 1000, 1); // session end; sent with keepalive so it survives the page

  };

  Capture.prototype.stats = function () {
    return { session: this.session, seq: this.seq, sent: this.sentBatches, queued: this.queue.length, dropped: this.dropped };
  };

  var current = null;
  global.VigilCapture = {
    start: function (opts) { if (current) current.stop(); current = new Capture(opts); return current; },
    stop: function () { if (current) { current.stop(); current = null; } },
    stats: function () { return current ? current.stats() : null; },
    classOf: classOf
  };
})(window);
