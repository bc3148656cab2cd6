// Destructive actions are links to a page that asks first. With JavaScript, the same question
// opens in a dialog on the current page; its form posts to the same address the page's would.
(function () {
  "use strict";

  function ask(link) {
    var dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-title");
    var title = document.createElement("h2");
    title.id = "confirm-title";
    title.textContent = link.dataset.confirmTitle;
    var message = document.createElement("p");
    message.textContent = link.dataset.confirm;
    var form = document.createElement("form");
    form.method = "post";
    form.action = link.href;
    form.className = "confirm-actions";
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = link.dataset.csrf;
    var go = document.createElement("button");
    go.type = "submit";
    go.className = "button danger";
    go.textContent = link.dataset.confirmButton;
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button subtle";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("close", function () { dialog.remove(); link.focus(); });
    form.append(token, go, cancel);
    dialog.append(title, message, form);
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-confirm]");
    if (!link || typeof HTMLDialogElement === "undefined") {
      return;
    }
    event.preventDefault();
    ask(link);
  });
}());
