/*
 * Bulk Upload: while a large upload's links are made, poll its status (GET
 * /api/v1/bulk-uploads/{id}) every second, move the <progress> bar, and reload the page
 * once the links are made (or the attempt failed). Without script, the page's
 * <noscript> meta refresh does the same, less smoothly.
 */
(function () {
  "use strict";

  var box = document.querySelector("[data-bulk-progress]");
  if (!box || !window.clientpay) {
    return;
  }
  var bar = box.querySelector("progress");
  var text = box.querySelector("[data-progress-text]");
  var url = box.getAttribute("data-status-url");
  var WORKING = "processing";
  var lastStep = null;

  function number(value) {
    return Number(value).toLocaleString("en-US");
  }

  function show(progress) {
    var total = progress.total || 0;
    var done = Math.min(progress.done || 0, total);
    var percent = total ? Math.floor((100 * done) / total) : 0;
    bar.max = total || 1;
    bar.value = done;
    bar.textContent = percent + "%";
    // The live region speaks at each tenth of the way, not at every poll.
    var step = done >= total ? "saving" : String(Math.floor(percent / 10));
    if (step === lastStep) {
      return;
    }
    lastStep = step;
    text.textContent =
      step === "saving"
        ? "Saving the links…"
        : number(done) + " of " + number(total) + " prepared (" + percent + "%).";
  }

  function poll() {
    window.clientpay.fetchJSON(url).then(
      function (result) {
        if (!result.ok || !result.data) {
          window.setTimeout(poll, 3000);
          return;
        }
        if (result.data.status !== WORKING) {
          window.location.reload();
          return;
        }
        show(result.data.progress);
        window.setTimeout(poll, 1000);
      },
      function () {
        window.setTimeout(poll, 3000);
      }
    );
  }

  window.setTimeout(poll, 1000);
})();
