// Keyboard shortcuts for the study screen. Everything here also works without
// JavaScript through plain links, buttons and forms; this only makes it quicker.
(function () {
  "use strict";
  var reveal = document.getElementById("reveal");
  var form = document.getElementById("answer-form");
  var undo = document.getElementById("undo-form");
  var sending = false;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function rate(value) {
    var button = form && form.querySelector('button[data-key="' + value + '"]');
    if (button) { button.click(); }
  }

  if (reveal) {
    reveal.addEventListener("toggle", function () {
      if (reveal.open) {
        var good = form && form.querySelector('button[data-key="3"]');
        if (good) { good.focus({ preventScroll: true }); }
      }
    });
  }

  if (form) {
    // One showing, one answer: a second click or key press while sending is ignored
    // (the server would also record it only once).
    form.addEventListener("submit", function (event) {
      if (sending) { event.preventDefault(); return; }
      sending = true;
      form.classList.add("sending");
    });
  }

  document.addEventListener("keydown", function (event) {
    if (typing(event.target) || event.altKey || event.metaKey && event.key.toLowerCase() !== "z") { return; }
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      if (undo) { event.preventDefault(); undo.requestSubmit(); }
      return;
    }
    if (event.ctrlKey) { return; }
    var shown = reveal && reveal.open;
    if (event.key === " " || event.key === "Enter") {
      if (!reveal) { return; }
      // A focused link or button keeps its own Space and Enter (after the reveal, Good has focus).
      if (event.target && /^(A|BUTTON)$/.test(event.target.tagName)) { return; }
      event.preventDefault();
      if (!shown) { reveal.open = true; } else { rate(3); }
      return;
    }
    if (shown && /^[1-4]$/.test(event.key)) {
      event.preventDefault();
      rate(event.key);
    }
  });
})();
