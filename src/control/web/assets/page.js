// tollgate — Manage Tokens page. Plain JavaScript that only enhances: every action is a
// form that works without it. Here: copy a token with a visible "Copied", ask in a
// <dialog> before a form marked data-confirm posts, edit a row in place.
"use strict";

(function () {
  // === what the last change did ===
  // The tab a change leads back to says what it did (#flash); the focus moves to what it
  // concerns (the row changed, the form refused), so the keyboard carries on from there,
  // and the live region reads the sentence out.
  function focusOn(target) {
    if (target.tagName === "FORM") {
      var details = target.closest("details");
      if (details) { details.open = true; }
      var field = target.querySelector("[autofocus]") ||
        target.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
      if (field) { target = field; }
    }
    if (!target.matches("a[href], button, input, select, textarea, [tabindex]")) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "center" });
  }

  // The current tab stays in view in the tab bar, which scrolls sideways on a phone.
  function showCurrentTab() {
    var current = document.querySelector(".tabs [aria-current=page]");
    if (current && current.parentElement.scrollWidth > current.parentElement.clientWidth) {
      current.parentElement.scrollLeft = current.offsetLeft - current.parentElement.offsetLeft - 16;
    }
  }

  function showFlash() {
    var flash = document.getElementById("flash");
    if (!flash) { return; }
    var id = flash.getAttribute("data-focus");
    var target = (id && document.getElementById(id)) || (flash.hidden ? null : flash);
    if (target) { focusOn(target); }
    var live = document.getElementById("announce");
    var say = live && live.getAttribute("data-say");
    if (say) { setTimeout(function () { live.textContent = say; }, 100); }
  }
  function onLoad() {
    showCurrentTab();
    showFlash();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onLoad);
  } else {
    onLoad();
  }

  // === copy to the clipboard ===
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Older browsers, or a page served over plain HTTP to another host.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var status = button.parentElement.querySelector(".copied");
    var text = button.getAttribute("data-copy");
    copyText(text).then(function () {
      document.documentElement.setAttribute("data-last-copied", text);
      if (status) {
        status.textContent = "Copied";
        clearTimeout(status._timer);
        status._timer = setTimeout(function () { status.textContent = ""; }, 2500);
      }
    }, function () {
      if (status) { status.textContent = "Select and copy it"; }
    });
  });

  // === confirmation before a destructive post ===
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    var dialog = document.getElementById("confirm");
    if (!question || !dialog || typeof dialog.showModal !== "function") { return; }
    if (form._confirmed) { return; }
    event.preventDefault();
    document.getElementById("confirm-question").textContent = question;
    var list = document.getElementById("confirm-details");
    list.textContent = "";
    var details = form.getAttribute("data-confirm-details");
    if (details) {
      details.split("\n").forEach(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      });
    }
    document.getElementById("confirm-ok").textContent =
      form.getAttribute("data-confirm-button") || "Delete";
    var opener = document.activeElement;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "ok") {
        form._confirmed = true;
        form.submit();
      } else if (opener && opener.focus) {
        opener.focus();
      }
    });
  });

  // === edit in place ===
  // A "Rename"/"Edit" link points at ?edit=<id> (the server renders the row open, for a
  // browser without script); here it opens the row's form where it is.
  function editParts(rowId) {
    var row = document.getElementById(rowId);
    if (!row) { return null; }
    var editRow = document.getElementById(rowId + "-edit");
    if (editRow) { return { show: [editRow], hide: [], focus: editRow }; }
    return {
      show: Array.prototype.slice.call(row.querySelectorAll("form.rename")),
      hide: Array.prototype.slice.call(row.querySelectorAll(".view")),
      focus: row
    };
  }

  function setEditing(rowId, on) {
    var parts = editParts(rowId);
    if (!parts) { return; }
    parts.show.forEach(function (el) { el.hidden = !on; });
    parts.hide.forEach(function (el) { el.hidden = on; });
    if (on) {
      var input = parts.focus.querySelector("form input:not([type=hidden]), form select");
      if (input) { input.focus(); if (input.select) { input.select(); } }
    } else {
      var opener = document.querySelector('[data-edit="' + rowId + '"]');
      if (opener) { opener.focus(); }
    }
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-edit]");
    if (opener) {
      event.preventDefault();
      setEditing(opener.getAttribute("data-edit"), true);
      return;
    }
    var cancel = event.target.closest("[data-edit-cancel]");
    if (cancel) {
      var row = cancel.closest("tr");
      if (!row) { return; }
      event.preventDefault();
      setEditing(row.id.replace(/-edit$/, ""), false);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    // The account switcher closes, and the focus goes back to its button.
    var menu = document.querySelector("details.switcher[open]");
    if (menu) {
      event.preventDefault();
      menu.open = false;
      menu.querySelector("summary").focus();
      return;
    }
    var form = event.target.closest && event.target.closest("form.rename, form.inline-edit");
    if (!form) { return; }
    var row = form.closest("tr");
    if (row) { event.preventDefault(); setEditing(row.id.replace(/-edit$/, ""), false); }
  });
})();
