// Keys press the matching choice button (1 / 2 / 0 for pairs, 1 / 2 / 3 for ratings), n skips; also sizes the
// progress bar (no inline styles are allowed by the Content-Security-Policy).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var fill = document.querySelector(".progress-fill");
  if (fill) {
    var total = Number(fill.dataset.total) || 0;
    fill.style.width = total ? (100 * Number(fill.dataset.done) / total) + "%" : "0%";
  }
});
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  var tag = event.target && event.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
  var button = document.querySelector('button[data-key="' + event.key + '"]');
  if (button) {
    event.preventDefault();
    button.click();
  } else if (event.key === "n") {
    var skip = document.getElementById("skip");
    if (skip) skip.click();
  }
});
