/*
 * slmbot web chat widget. Embed with one tag:
 *   <script src="https://BOT/widget.js" data-bot-url="https://BOT" defer></script>
 * Optional: data-title="Chat with us", data-open="true" (open on load).
 *
 * Plain JavaScript, no build step. Messages travel over a WebSocket (/ws/chat) that reconnects
 * by itself; while it is down they go over REST (/web/message). The session id lives in
 * localStorage, so a reloaded page shows the conversation so far (/web/history). Every message
 * is rendered as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var botUrl = ((script && script.getAttribute("data-bot-url")) || (script && script.src ? new URL(script.src).origin : location.origin)).replace(/\/+$/, "");
  var title = (script && script.getAttribute("data-title")) || "Chat with us";
  var STORAGE_KEY = "slmbot-session:" + botUrl;
  var MAX_BACKOFF_MS = 10000;

  function newSessionId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sessionId() {
    var id = null;
    try { id = localStorage.getItem(STORAGE_KEY); } catch (e) { /* storage blocked: a session per page view */ }
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      id = newSessionId();
      try { localStorage.setItem(STORAGE_KEY, id); } catch (e) { /* see above */ }
    }
    return id;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(at) {
    var date = at ? new Date(at) : new Date();
    if (isNaN(date.getTime())) date = new Date();
    return date;
  }

  var session = sessionId();
  var socket = null;
  var backoff = 500;
  var reconnectTimer = null;
  var historyLoaded = false;
  var started = false;

  // --- DOM -------------------------------------------------------------------------------
  var style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = botUrl + "/widget.css";
  document.head.appendChild(style);

  var root = el("div", "slmbot");
  var launcher = el("button", "slmbot-launcher", "Chat");
  launcher.type = "button";
  launcher.setAttribute("aria-label", "Open chat");
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "slmbot-panel");

  var panel = el("section", "slmbot-panel");
  panel.id = "slmbot-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);

  var header = el("header", "slmbot-header");
  var heading = el("h2", "slmbot-title", title);
  var status = el("span", "slmbot-status", "");
  status.setAttribute("aria-live", "polite");
  var close = el("button", "slmbot-close", "\u00d7");
  close.type = "button";
  close.setAttribute("aria-label", "Close chat");
  header.appendChild(heading);
  header.appendChild(status);
  header.appendChild(close);

  var log = el("ol", "slmbot-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Conversation");
  log.tabIndex = 0;

  var typing = el("div", "slmbot-typing");
  typing.hidden = true;
  typing.setAttribute("aria-label", "The assistant is typing");
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));

  var quick = el("div", "slmbot-quick");
  quick.setAttribute("role", "group");
  quick.setAttribute("aria-label", "Suggested replies");

  var form = el("form", "slmbot-form");
  var input = el("input", "slmbot-input");
  input.type = "text";
  input.maxLength = 10000;
  input.autocomplete = "off";
  input.placeholder = "Type a message\u2026";
  input.setAttribute("aria-label", "Message");
  var send = el("button", "slmbot-send", "Send");
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);

  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(typing);
  panel.appendChild(quick);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);

  // --- rendering -------------------------------------------------------------------------
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function showMessage(message) {
    var who = message.type === "user" ? "user" : (message.source === "agent" ? "agent" : "bot");
    var item = el("li", "slmbot-message slmbot-" + who);
    item.appendChild(el("p", "slmbot-text", message.text || ""));
    if (message.image && /^https?:\/\//.test(message.image)) {
      var image = el("img", "slmbot-image");
      image.src = message.image;
      image.alt = "";
      item.appendChild(image);
    }
    var date = clock(message.at);
    var time = el("time", "slmbot-time", date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    time.dateTime = date.toISOString();
    item.appendChild(time);
    log.appendChild(item);
    if (message.type === "bot") showButtons(message.buttons || []);
    scrollDown();
  }

  function showButtons(buttons) {
    quick.textContent = "";
    buttons.forEach(function (button) {
      var choice = el("button", "slmbot-choice", button.title);
      choice.type = "button";
      choice.addEventListener("click", function () { say(button.payload, button.title); });
      quick.appendChild(choice);
    });
  }

  function setTyping(on) {
    typing.hidden = !on;
    if (on) scrollDown();
  }

  function receive(message) {
    if (message.type === "typing") return setTyping(true);
    if (message.type === "done") return setTyping(false);
    if (message.type === "error") {
      setTyping(false);
      status.textContent = message.message || "Something went wrong";
      return;
    }
    if (message.type === "bot") setTyping(false);
    showMessage(message);
  }

  // --- transport -------------------------------------------------------------------------
  function socketOpen() { return socket && socket.readyState === WebSocket.OPEN; }

  function connect() {
    clearTimeout(reconnectTimer);
    var url = botUrl.replace(/^http/, "ws") + "/ws/chat?session=" + encodeURIComponent(session);
    try {
      socket = new WebSocket(url);
    } catch (e) {
      return scheduleReconnect();
    }
    socket.onopen = function () {
      backoff = 500;
      status.textContent = "";
    };
    socket.onmessage = function (event) {
      try { receive(JSON.parse(event.data)); } catch (e) { /* ignore a malformed frame */ }
    };
    socket.onclose = function () {
      socket = null;
      status.textContent = "Reconnecting\u2026";
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }

  function postJson(path, body) {
    return fetch(botUrl + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function say(text, shownAs) {
    text = text.trim();
    if (!text) return;
    quick.textContent = "";
    showMessage({ type: "user", text: shownAs || text });
    setTyping(true);
    if (socketOpen()) {
      socket.send(JSON.stringify({ text: text }));
      return;
    }
    postJson("/web/message", { session: session, text: text }).then(function (replies) {
      setTyping(false);
      replies.forEach(receive);
    }).catch(function () {
      setTyping(false);
      status.textContent = "Message not sent: the assistant is unreachable. Please try again.";
    });
  }

  function loadHistory() {
    if (historyLoaded) return;
    historyLoaded = true;
    fetch(botUrl + "/web/history?session=" + encodeURIComponent(session)).then(function (response) {
      return response.ok ? response.json() : [];
    }).then(function (messages) {
      messages.forEach(showMessage);
    }).catch(function () { historyLoaded = false; });
  }

  // --- open / close ----------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    root.classList.add("slmbot-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat");
    loadHistory();
    if (!started) {
      started = true;
      connect();
    }
    input.focus();
  }

  function hide() {
    panel.hidden = true;
    root.classList.remove("slmbot-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { panel.hidden ? open() : hide(); });
  close.addEventListener("click", hide);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") hide(); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    input.value = "";
    say(text);
  });

  function mount() {
    document.body.appendChild(root);
    if (script && script.getAttribute("data-open") === "true") open();
  }

  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
