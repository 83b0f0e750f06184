// artifactd pages work without JavaScript; this file only adds copy buttons and asks before a
// delete form is sent.
(function () {
  "use strict";
  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected */ }
  }
  function copied(button) {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var el = document.getElementById(button.getAttribute("data-copy"));
      if (!el) { return; }
      var text = el.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        // A browser that neither grants nor refuses the write within a second gets the
        // selection fallback, so the button always answers.
        var settled = false;
        var settle = function (ok) {
          if (settled) { return; }
          settled = true;
          if (!ok) { select(el); }
          copied(button);
        };
        setTimeout(function () { settle(false); }, 1000);
        navigator.clipboard.writeText(text).then(function () { settle(true); },
          function () { settle(false); });
      } else {
        select(el);
        copied(button);
      }
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
