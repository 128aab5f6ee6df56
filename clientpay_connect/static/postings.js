/*
 * Manage Postings. The pages work without this script; with it, a manual posting's slip
 * gets its Copy (app.js does the copying) and Print buttons.
 */
(function () {
  "use strict";

  Array.prototype.forEach.call(
    document.querySelectorAll(".slip [data-copy-target][hidden], .slip [data-print][hidden]"),
    function (button) {
      button.hidden = false;
    }
  );

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) {
      window.print();
    }
  });
})();
