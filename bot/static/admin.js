/* slmbot review pages: mark entity spans by selecting words of a customer message. */
(function () {
  "use strict";
  document.querySelectorAll("form[data-annotate]").forEach(function (form) {
    var textEl = form.closest("section").querySelector("[data-text]");
    var hidden = form.querySelector("[data-entities]");
    var list = form.querySelector("[data-entity-list]");
    var typeSelect = form.querySelector("[data-entity-type]");

    function spans() {
      try { return JSON.parse(hidden.value || "[]"); } catch (e) { return []; }
    }

    function show() {
      var text = textEl.textContent;
      var shown = spans().map(function (s) { return s.entity + " = " + text.slice(s.start, s.end); });
      list.textContent = shown.length ? "entities: " + shown.join(" · ") : "no entities";
    }

    form.querySelector("[data-mark]").addEventListener("click", function () {
      var selection = window.getSelection();
      if (!selection.rangeCount) return;
      var range = selection.getRangeAt(0);
      if (!textEl.contains(range.startContainer) || !textEl.contains(range.endContainer)) return;
      var before = document.createRange();
      before.selectNodeContents(textEl);
      before.setEnd(range.startContainer, range.startOffset);
      var text = textEl.textContent;
      var start = before.toString().length;
      var end = start + range.toString().length;
      while (start < end && /\s/.test(text[start])) start++;
      while (end > start && /\s/.test(text[end - 1])) end--;
      if (start === end) return;
      var type = typeSelect.value || window.prompt("Entity type (letters, digits, _)");
      if (!type) return;
      var kept = spans().filter(function (s) { return s.end <= start || s.start >= end; });
      kept.push({ start: start, end: end, entity: type });
      kept.sort(function (a, b) { return a.start - b.start; });
      hidden.value = JSON.stringify(kept);
      show();
    });
    form.querySelector("[data-clear]").addEventListener("click", function () {
      hidden.value = "[]";
      show();
    });
    show();
  });
})();
