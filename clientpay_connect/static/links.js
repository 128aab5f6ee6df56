/*
 * The forms that make a link (Quick Link, Connect: `data-link-form`). They work without this
 * script (both halves show, and "Add another address" asks the server for one more field);
 * with it, the Email Yes/No choice shows only its half, and another address field is added
 * in place.
 */
(function () {
  "use strict";

  var form = document.querySelector("[data-link-form]");
  if (!form) {
    return;
  }

  function chosenHalf() {
    var radio = form.querySelector("[data-email-choice]:checked");
    return radio ? radio.value : "yes";
  }

  function showChosenHalf() {
    var chosen = chosenHalf();
    Array.prototype.forEach.call(form.querySelectorAll("[data-email-section]"), function (section) {
      section.hidden = section.getAttribute("data-email-section") !== chosen;
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target.matches("[data-email-choice]")) {
      showChosenHalf();
    }
  });
  showChosenHalf();

  var addButton = form.querySelector("[data-add-email]");
  var list = form.querySelector("[data-email-list]");
  if (!addButton || !list) {
    return;
  }
  var max = parseInt(addButton.getAttribute("data-max"), 10) || 10;

  function addressRow(index) {
    var row = document.createElement("div");
    row.className = "email-row";
    row.setAttribute("data-email-row", "");
    var label = document.createElement("label");
    label.htmlFor = "email-" + index;
    label.textContent = "Email address " + (index + 1);
    var input = document.createElement("input");
    input.type = "text";
    input.id = "email-" + index;
    input.name = "emails";
    input.setAttribute("inputmode", "email");
    input.setAttribute("autocomplete", "off");
    input.setAttribute("autocapitalize", "off");
    input.spellcheck = false;
    row.appendChild(label);
    row.appendChild(input);
    return row;
  }

  addButton.addEventListener("click", function (event) {
    event.preventDefault();
    var index = list.querySelectorAll("[data-email-row]").length;
    var row = addressRow(index);
    list.appendChild(row);
    row.querySelector("input").focus();
    if (index + 1 >= max) {
      addButton.parentNode.hidden = true;
    }
  });
})();
