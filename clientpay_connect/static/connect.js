/*
 * The Connect page. Without this script it still works: Search reloads the page with the
 * results, and "Show what each invoice is asked for" sends the form for a preview. With it:
 *   - Enter in the search box asks htmx for the results instead of reloading the page;
 *   - ticking an invoice fills the payer's email (and name, as a placeholder) from its client,
 *     unless staff typed their own;
 *   - the amount boxes that do not count are disabled: the invoices' own amounts while a total
 *     is allocated, the total while each amount is typed;
 *   - a trust merchant account takes typed amounts only, so "Allocate a total" is turned off.
 * The preview itself is htmx's (hx-post on #allocation-preview).
 */
(function () {
  "use strict";

  var form = document.querySelector("[data-connect-form]");
  if (!form) {
    return;
  }
  var search = document.querySelector("[data-connect-search]");
  var results = document.getElementById("connect-results");
  var email = form.querySelector("[data-payer-email]");
  var name = form.querySelector("[data-payer-name]");
  var account = form.querySelector("#merchant_account_id");
  var eachRadio = form.querySelector("#allocation-each");
  var totalRadio = form.querySelector("#allocation-total");
  var totalField = form.querySelector("[data-total-field] input");
  var previewButton = form.querySelector("[data-preview-button]");
  // What this script last put in the email box: replaced on the next tick, typing is kept.
  var filledEmail = email ? email.value : "";

  if (search && window.htmx) {
    search.addEventListener("submit", function (event) {
      event.preventDefault();
      window.htmx.trigger(search.querySelector("input[type=search]"), "search");
    });
  }
  if (previewButton && window.htmx) {
    // The preview follows every change; the button is for pages without script.
    previewButton.parentNode.hidden = true;
  }

  function isTrust() {
    var option = account && account.options[account.selectedIndex];
    return Boolean(option && option.getAttribute("data-kind") === "trust");
  }

  function applyMode() {
    var trust = isTrust();
    if (totalRadio) {
      totalRadio.disabled = trust;
      if (trust && totalRadio.checked) {
        eachRadio.checked = true;
      }
    }
    var allocating = Boolean(totalRadio && totalRadio.checked);
    if (totalField) {
      totalField.disabled = !allocating;
    }
    Array.prototype.forEach.call(form.querySelectorAll("[data-invoice-amount]"), function (box) {
      box.disabled = allocating;
    });
  }

  function fillPayer(box) {
    if (!box.checked) {
      return;
    }
    var clientEmail = box.getAttribute("data-client-email") || "";
    if (email && clientEmail && (email.value === "" || email.value === filledEmail)) {
      email.value = clientEmail;
      filledEmail = clientEmail;
    }
    if (name && !name.value) {
      name.placeholder = box.getAttribute("data-client-name") || "";
    }
  }

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[name=invoice]")) {
      target.closest("[data-invoice-row]").classList.toggle("is-chosen", target.checked);
      fillPayer(target);
    }
    if (target.matches("[name=allocation]") || target === account) {
      applyMode();
    }
  });

  if (results) {
    results.addEventListener("htmx:afterSwap", applyMode);
  }
  applyMode();
})();
