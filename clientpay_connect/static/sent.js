/*
 * Sent Pages. The page works without this script; with it, each row's Copy button shows
 * (app.js does the copying), a header checkbox selects every row of the page, and the
 * "Cancel selected" confirmation says how many links it is about.
 */
(function () {
  "use strict";

  var form = document.getElementById("sent-form");
  if (!form) {
    return;
  }

  Array.prototype.forEach.call(form.querySelectorAll(".copy-button[hidden]"), function (button) {
    button.hidden = false;
  });

  var selectAll = form.querySelector("[data-select-all]");
  var cancel = form.querySelector("[data-cancel-selected]");
  var baseConfirm = cancel ? cancel.getAttribute("data-confirm") : "";

  function rowBoxes() {
    return form.querySelectorAll('tbody input[type="checkbox"][name="ids"]');
  }

  function selectedCount() {
    return form.querySelectorAll('tbody input[type="checkbox"][name="ids"]:checked').length;
  }

  function update() {
    var total = rowBoxes().length;
    var chosen = selectedCount();
    if (selectAll) {
      selectAll.checked = total > 0 && chosen === total;
      selectAll.indeterminate = chosen > 0 && chosen < total;
    }
    if (cancel && chosen > 0) {
      var what = chosen === 1 ? "the selected link" : "the " + chosen + " selected links";
      cancel.setAttribute("data-confirm", "Cancel " + what + "? Your clients will no longer be able to pay with them. Only outstanding links are cancelled.");
    } else if (cancel) {
      cancel.setAttribute("data-confirm", baseConfirm);
    }
  }

  if (selectAll) {
    selectAll.hidden = false;
    selectAll.addEventListener("change", function () {
      Array.prototype.forEach.call(rowBoxes(), function (box) {
        box.checked = selectAll.checked;
      });
      update();
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target.matches('tbody input[name="ids"]')) {
      update();
    }
  });
  update();
})();
