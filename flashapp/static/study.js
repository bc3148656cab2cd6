// The study screen, made quicker. Everything here also works without JavaScript through
// plain links, buttons and forms; this adds keyboard shortcuts and answers without a page load:
// the answer is posted in the background and the page's <main> is replaced by the next study
// page's, so whatever that page shows (the card, the counts, messages, the done screen) comes along.
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function rate(value) {
    var form = byId("answer-form");
    var button = form && form.querySelector('button[data-key="' + value + '"]');
    if (button) { button.click(); }
  }

  // The toggle event does not bubble: listen while it goes down, so a swapped-in card is covered too.
  document.addEventListener("toggle", function (event) {
    var reveal = event.target;
    if (reveal.id !== "reveal" || !reveal.open) { return; }
    var good = reveal.querySelector('#answer-form button[data-key="3"]');
    if (good) { good.focus({ preventScroll: true }); }
  }, true);

  // Put the next page's <main> (and title) in place of this one's.
  function swapIn(html) {
    var next = new DOMParser().parseFromString(html, "text/html");
    var main = next.querySelector("main");
    var current = document.querySelector("main");
    if (!main || !current) { return false; }
    current.replaceWith(document.adoptNode(main));
    document.title = next.title;
    document.body.className = next.body.className;
    // The answered card's buttons are gone; the page itself takes the focus, so Space works at once.
    var question = document.querySelector("#card .question, main h1");
    if (question) {
      question.setAttribute("tabindex", "-1");
      question.focus({ preventScroll: true });
    }
    return true;
  }

  function sendInBackground(form, submitter) {
    var data = new FormData(form);
    if (submitter && submitter.name) { data.set(submitter.name, submitter.value); }
    return fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin", headers: { "Accept": "text/html" },
    }).then(function (response) {
      var landed = new URL(response.url, location.href);
      var studying = landed.pathname === location.pathname || landed.pathname === new URL(form.action).pathname;
      if (landed.origin !== location.origin || !studying) {
        // Sent somewhere else (logged out, for one): go there as a plain form would have.
        location.assign(response.url);
        return;
      }
      return response.text().then(function (html) {
        if (!swapIn(html)) { location.assign(location.href); }
      });
    });
  }

  // One showing, one answer: a second click or key press while sending is ignored
  // (the server would also record it only once).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "answer-form") { return; }
    event.preventDefault();
    if (form.classList.contains("sending")) { return; }
    form.classList.add("sending");
    sendInBackground(form, event.submitter).catch(function () {
      // No answer from the network: send the plain form, as without JavaScript. The server
      // records one answer per showing, so a request that did arrive is not counted twice.
      var fallback = document.createElement("input");
      fallback.type = "hidden";
      fallback.name = event.submitter ? event.submitter.name : "rating";
      fallback.value = event.submitter ? event.submitter.value : "3";
      form.appendChild(fallback);
      form.submit();
    });
  });

  document.addEventListener("keydown", function (event) {
    if (typing(event.target) || event.altKey || event.metaKey && event.key.toLowerCase() !== "z") { return; }
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "z") {
      var undo = byId("undo-form");
      if (undo) { event.preventDefault(); undo.requestSubmit(); }
      return;
    }
    if (event.ctrlKey || event.repeat) { return; }
    var reveal = byId("reveal");
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
