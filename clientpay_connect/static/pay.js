/*
 * The payment page.
 *
 * Card and bank numbers never reach our server. With Stripe, the card fields are Stripe.js's
 * own (Elements, in Stripe's frame) and Stripe.js turns them, or the bank account, into a
 * PaymentMethod at Stripe; with the sandbox (development only) they go to its tokenization
 * endpoint, POST /sandbox/tokens. Only the PaymentMethod's id (or the sandbox's token) is
 * sent to the payment API with the payer's name, email and amount. Every message comes
 * translated from the page's JSON data block.
 */
(function () {
  "use strict";

  var dataElement = document.getElementById("pay-data");
  var section = document.getElementById("pay-section");
  var form = document.getElementById("pay-form");
  if (!dataElement || !section || !form) {
    return;
  }
  var data = JSON.parse(dataElement.textContent);
  var text = data.messages;
  var button = document.getElementById("pay-button");
  var errorRegion = document.getElementById("pay-error");
  var amountInput = document.getElementById("amount");
  var money = new Intl.NumberFormat(data.locale, { style: "currency", currency: data.currency });

  // Where each field's message goes, for our checks and for the API's field errors.
  var FIELDS = {
    payer_name: { inputs: ["payer-name"], error: "payer-name-error" },
    payer_email: { inputs: ["payer-email"], error: "payer-email-error" },
    amount: { inputs: ["amount"], error: "amount-error" },
    card_element: { inputs: ["card-element"], error: "card-element-error" },
    card_number: { inputs: ["card-number"], error: "card-number-error" },
    card_expiry: { inputs: ["card-exp-month", "card-exp-year"], error: "card-expiry-error" },
    card_cvc: { inputs: ["card-cvc"], error: "card-cvc-error" },
    routing_number: { inputs: ["routing-number"], error: "routing-number-error" },
    account_number: { inputs: ["account-number"], error: "account-number-error" },
    account_type: { inputs: ["account-type"], error: "account-type-error" },
    recaptcha: { inputs: [], error: "pay-recaptcha-error" },
  };
  // The API's and the tokenization's field names, in terms of ours.
  var API_FIELDS = {
    payer_name: "payer_name",
    payer_email: "payer_email",
    amount: "amount",
    card_number: "card_number",
    number: "card_number",
    exp_month: "card_expiry",
    exp_year: "card_expiry",
    cvc: "card_cvc",
    routing_number: "routing_number",
    account_number: "account_number",
    account_type: "account_type",
    recaptcha_token: "recaptcha",
  };
  var DECLINES = [
    "card_declined",
    "insufficient_funds",
    "expired_card",
    "incorrect_cvc",
    "processing_error",
    "account_closed",
    "no_account",
    "debit_not_authorized",
    "bank_account_unverified",
    "authentication_failed",
  ];
  // A decline about one field puts the payer's attention there.
  var DECLINE_FIELDS = { expired_card: "card_expiry", incorrect_cvc: "card_cvc" };

  // Stripe.js's card field, when Stripe is the processor; a count of its changes stands in for
  // the card's details (which this page never sees) in a submission's fingerprint.
  var stripe = null;
  var cardElement = null;
  var cardChanges = 0;
  // Stripe's names for the bank account's fields, in terms of ours.
  var STRIPE_BANK_FIELDS = {
    "us_bank_account[routing_number]": "routing_number",
    "us_bank_account[account_number]": "account_number",
    "us_bank_account[account_type]": "account_type",
  };

  var submitting = false;
  var finished = false;
  // The Idempotency-Key of a submission whose outcome we never learned (the network failed,
  // the server erred): sending the very same details again reuses it, so that the retry, or
  // a second click, can never charge twice. Any definite answer, or a changed detail, ends it.
  var pending = null;

  function byId(id) {
    return document.getElementById(id);
  }

  function value(id) {
    var element = byId(id);
    return element ? element.value.trim() : "";
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_match, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : "";
    });
  }

  function selectedMethod() {
    var method = form.elements.namedItem("method");
    if (!method) {
      return "card";
    }
    return method.value || "card";
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; plain-http development still gets a random key.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  // --- amounts -----------------------------------------------------------------------

  var DIGITS = data.minor_digits;

  function toMinor(decimalText) {
    var parts = decimalText.split(".");
    var fraction = (parts[1] || "").padEnd(DIGITS, "0");
    return parseInt(parts[0] + fraction, 10);
  }

  // The amount as the API's decimal string ("1234.50"), or null if it is not one we accept.
  function readAmount() {
    var cleaned = amountInput.value.replace(/[\s\u00a0$,]/g, "").replace(/^US/i, "");
    var pattern = DIGITS > 0 ? new RegExp("^\\d+(\\.\\d{1," + DIGITS + "})?$") : /^\d+$/;
    if (!pattern.test(cleaned)) {
      return null;
    }
    var minor = toMinor(cleaned);
    if (minor <= 0 || minor > toMinor(data.amount_due)) {
      return null;
    }
    return cleaned;
  }

  function updateButtonLabel() {
    if (submitting || finished) {
      return;
    }
    var amount = readAmount();
    button.textContent = amount === null ? text.pay_plain : fill(text.pay, { amount: money.format(Number(amount)) });
  }

  // --- checks before anything is sent ------------------------------------------------

  function luhnValid(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var digit = parseInt(digits.charAt(digits.length - 1 - i), 10);
      if (i % 2 === 1) {
        digit *= 2;
        if (digit > 9) {
          digit -= 9;
        }
      }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  // The ABA checksum: weights 3, 7, 1 repeated must sum to a multiple of ten.
  function routingValid(number) {
    if (!/^\d{9}$/.test(number)) {
      return false;
    }
    var weights = [3, 7, 1, 3, 7, 1, 3, 7, 1];
    var sum = 0;
    for (var i = 0; i < 9; i++) {
      sum += parseInt(number.charAt(i), 10) * weights[i];
    }
    return sum % 10 === 0;
  }

  function checkFields(method) {
    var problems = [];
    if (!value("payer-name")) {
      problems.push(["payer_name", text.payer_name]);
    }
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value("payer-email"))) {
      problems.push(["payer_email", text.payer_email]);
    }
    if (readAmount() === null) {
      problems.push(["amount", text.amount]);
    }
    if (method === "card" && stripe) {
      // Stripe.js checks its own fields when it makes the PaymentMethod.
    } else if (method === "card") {
      var number = value("card-number").replace(/[\s-]/g, "");
      if (!/^\d{12,19}$/.test(number) || !luhnValid(number)) {
        problems.push(["card_number", text.card_number]);
      }
      var month = parseInt(value("card-exp-month"), 10);
      var year = parseInt(value("card-exp-year"), 10);
      var now = new Date();
      if (!month || !year) {
        problems.push(["card_expiry", text.card_expiry]);
      } else if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
        problems.push(["card_expiry", text.card_expired]);
      }
      if (!/^\d{3,4}$/.test(value("card-cvc"))) {
        problems.push(["card_cvc", text.card_cvc]);
      }
    } else {
      if (!routingValid(value("routing-number"))) {
        problems.push(["routing_number", text.routing_number]);
      }
      if (!/^\d{4,17}$/.test(value("account-number"))) {
        problems.push(["account_number", text.account_number]);
      }
      if (!value("account-type")) {
        problems.push(["account_type", text.account_type]);
      }
    }
    if (data.recaptcha && !recaptchaResponse()) {
      problems.push(["recaptcha", text.recaptcha]);
    }
    return problems;
  }

  function recaptchaResponse() {
    if (!window.grecaptcha || typeof window.grecaptcha.getResponse !== "function") {
      return "";
    }
    try {
      return window.grecaptcha.getResponse();
    } catch (_error) {
      return "";
    }
  }

  function resetRecaptcha() {
    if (data.recaptcha && window.grecaptcha && typeof window.grecaptcha.reset === "function") {
      try {
        window.grecaptcha.reset();
      } catch (_error) {
        // Not rendered yet: nothing to reset.
      }
    }
  }

  // --- showing errors ------------------------------------------------------------------

  function clearErrors() {
    errorRegion.replaceChildren();
    Object.keys(FIELDS).forEach(clearFieldError);
  }

  function showFieldError(name, message) {
    var field = FIELDS[name];
    var element = field && byId(field.error);
    if (!element) {
      return null;
    }
    element.textContent = message;
    element.hidden = false;
    var first = null;
    field.inputs.forEach(function (id) {
      var input = byId(id);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
    });
    return first;
  }

  // A message beside the Pay button; ``link`` optionally adds one link after it.
  function showAlert(message, link, className) {
    var box = document.createElement("div");
    box.className = className || "pay-alert";
    box.tabIndex = -1;
    var paragraph = document.createElement("p");
    paragraph.textContent = message;
    box.appendChild(paragraph);
    if (link) {
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      var wrapper = document.createElement("p");
      wrapper.appendChild(anchor);
      box.appendChild(wrapper);
    }
    errorRegion.replaceChildren(box);
    box.focus({ preventScroll: true });
    box.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  function clearFieldError(name) {
    var field = FIELDS[name];
    var message = byId(field.error);
    if (message) {
      message.textContent = "";
      message.hidden = true;
    }
    field.inputs.forEach(function (id) {
      var input = byId(id);
      if (input) {
        input.removeAttribute("aria-invalid");
      }
    });
  }

  // A field marked wrong loses its mark as soon as what is typed in it is right, rather than
  // at the next Pay; the summary goes with the last of them.
  function recheckField(event) {
    var target = event.target;
    if (!target || target.getAttribute("aria-invalid") !== "true") {
      return;
    }
    var name = Object.keys(FIELDS).filter(function (key) {
      return FIELDS[key].inputs.indexOf(target.id) !== -1;
    })[0];
    if (!name) {
      return;
    }
    var stillWrong = checkFields(selectedMethod()).some(function (problem) {
      return problem[0] === name;
    });
    if (stillWrong) {
      return;
    }
    clearFieldError(name);
    dropSummaryIfAllRight();
  }

  function dropSummaryIfAllRight() {
    var anyLeft = document.querySelector("#pay-section [aria-invalid='true']");
    var summary = errorRegion.querySelector(".pay-alert");
    if (!anyLeft && summary && summary.textContent === text.summary) {
      errorRegion.replaceChildren();
    }
  }

  function showFieldErrors(problems) {
    var firstInput = null;
    var shown = 0;
    problems.forEach(function (problem) {
      var input = showFieldError(problem[0], problem[1]);
      shown += 1;
      firstInput = firstInput || input;
    });
    if (shown) {
      showAlert(text.summary);
    }
    if (firstInput && firstInput.id === "card-element") {
      focusCardElement();
    } else if (firstInput) {
      firstInput.focus();
    }
  }

  function focusCardElement() {
    if (cardElement && typeof cardElement.focus === "function") {
      cardElement.focus();
    }
  }

  function apiFieldErrors(body) {
    var problems = [];
    (body && Array.isArray(body.errors) ? body.errors : []).forEach(function (error) {
      var ours = API_FIELDS[error.field];
      if (ours && FIELDS[ours]) {
        // Our own words in the payer's language; the API speaks English.
        problems.push([ours, text[ours] || text.field_error]);
      }
    });
    return problems;
  }

  // --- sending -------------------------------------------------------------------------

  function postJSON(url, body, headers) {
    var allHeaders = { "Content-Type": "application/json", Accept: "application/json" };
    Object.keys(headers || {}).forEach(function (name) {
      allHeaders[name] = headers[name];
    });
    return fetch(url, {
      method: "POST",
      headers: allHeaders,
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (json) {
          return { status: response.status, body: json };
        });
    });
  }

  function tokenDetails(method) {
    if (method === "card" && stripe) {
      return { card_changes: cardChanges };
    }
    if (method === "card") {
      return {
        card_number: value("card-number").replace(/[\s-]/g, ""),
        exp_month: parseInt(value("card-exp-month"), 10),
        exp_year: parseInt(value("card-exp-year"), 10),
        cvc: value("card-cvc"),
      };
    }
    return {
      routing_number: value("routing-number"),
      account_number: value("account-number"),
      account_type: value("account-type"),
    };
  }

  function setBusy(busy) {
    submitting = busy;
    button.disabled = busy || finished;
    button.setAttribute("aria-busy", busy ? "true" : "false");
    if (busy) {
      button.textContent = text.processing;
    } else {
      updateButtonLabel();
    }
  }

  function finish() {
    // The link can take no payment now: leave the button off for good.
    finished = true;
    button.disabled = true;
    pending = null;
  }

  function handleAnswer(answer) {
    var body = answer.body || {};
    var code = body.error || "";
    if ((answer.status === 200 || answer.status === 201) && body.status === "succeeded") {
      finished = true;
      window.location.assign(data.receipt_url);
      return;
    }
    if (answer.status === 202 && body.status === "processing") {
      // A bank debit: taken, and clearing for days. Nothing more to pay; the receipt comes
      // by email once the bank has cleared it.
      finish();
      var verifyAt = body.hosted_verification_url || "";
      if (verifyAt.indexOf("https://") === 0) {
        // Not debited yet: Stripe first verifies the account with small deposits, which
        // the payer confirms on Stripe's own page (the link is in their email too).
        showAlert(
          text.bank_verification,
          { href: verifyAt, text: text.verify_bank_account },
          "pay-alert pay-alert-done",
        );
        return;
      }
      showAlert(text.bank_processing, null, "pay-alert pay-alert-done");
      return;
    }
    if (code === "processor_unavailable") {
      // The processor may or may not have charged: the link waits for the resolver, and
      // paying again is exactly what must not happen.
      finish();
      showAlert(text.processor_unavailable);
      return;
    }
    if (answer.status >= 500) {
      // Outcome unknown: keep ``pending`` so that trying again is the same submission.
      showAlert(text.server);
      return;
    }
    if (answer.status === 429) {
      showAlert(text.rate_limited);
      return;
    }
    if (answer.status === 409 && body.link_status === "processing") {
      // Perhaps this payer's own earlier attempt, still running: asking again with the same
      // key will get its answer.
      showAlert(text.in_progress);
      return;
    }
    pending = null;
    resetRecaptcha();
    if (answer.status === 402) {
      var message = DECLINES.indexOf(code) >= 0 ? text[code] : text.declined;
      showAlert(message);
      var field = DECLINE_FIELDS[code];
      if (field) {
        showFieldError(field, message);
      }
      return;
    }
    if (answer.status === 422 || answer.status === 400) {
      var problems = apiFieldErrors(body);
      if (problems.length) {
        showFieldErrors(problems);
      } else if (code.indexOf("recaptcha") >= 0 || code.indexOf("captcha") >= 0) {
        showFieldErrors([["recaptcha", text.recaptcha]]);
      } else {
        showAlert(text.rejected);
      }
      return;
    }
    if (answer.status === 409) {
      if (body.link_status === "paid" || body.link_status === "partially_paid") {
        finish();
        showAlert(body.link_status === "paid" ? text.already_paid : text.already_used, {
          href: data.receipt_url,
          text: text.view_receipt,
        });
      } else {
        finish();
        showAlert(body.link_status === "expired" ? text.expired : text.not_payable);
      }
      return;
    }
    if (answer.status === 410) {
      finish();
      showAlert(text.expired);
      return;
    }
    if (answer.status === 404) {
      finish();
      showAlert(text.not_found);
      return;
    }
    showAlert(text.server);
  }

  // The card's bank wants the payer to confirm the payment (3-D Secure), and nothing is
  // charged until they do: Stripe.js shows the bank's check, then the same submission, with
  // the same key, asks our server how it ended. Whatever Stripe.js says, the server decides:
  // it asks Stripe, and cancels an attempt whose check was not finished.
  function afterBankCheck(answer, payment, attempt) {
    var body = answer.body || {};
    if (answer.status !== 202 || body.status !== "requires_action") {
      return answer;
    }
    var canCheck = stripe && typeof stripe.handleNextAction === "function";
    var checked = canCheck
      ? Promise.resolve(stripe.handleNextAction({ clientSecret: body.client_secret })).catch(
          function () {
            return null;
          }
        )
      : Promise.resolve(null);
    return checked.then(function () {
      return postJSON(data.pay_url, payment, { "Idempotency-Key": attempt.key });
    });
  }

  function submit(event) {
    event.preventDefault();
    if (submitting || finished) {
      return;
    }
    clearErrors();
    var method = selectedMethod();
    var problems = checkFields(method);
    if (problems.length) {
      showFieldErrors(problems);
      return;
    }
    var details = tokenDetails(method);
    var payment = {
      amount: readAmount(),
      payer_name: value("payer-name"),
      payer_email: value("payer-email"),
    };
    var fingerprint = JSON.stringify([method, details, payment]);
    if (!pending || pending.fingerprint !== fingerprint) {
      pending = { key: newKey(), fingerprint: fingerprint, token: null };
    }
    var attempt = pending;
    if (data.recaptcha) {
      payment.recaptcha_token = recaptchaResponse();
    }
    setBusy(true);
    // A retry sends the very body its key was first sent with, the card's token included:
    // the server answers a key reused with another body with 422, not with its payment.
    var tokenized = attempt.token
      ? Promise.resolve({ status: 200, body: { token: attempt.token } })
      : tokenize(method, details, payment);
    tokenized
      .then(function (tokenAnswer) {
        if (tokenAnswer.processorError) {
          showProcessorError(method, tokenAnswer.processorError);
          return null;
        }
        if (tokenAnswer.status !== 200 && tokenAnswer.status !== 201) {
          return tokenAnswer;
        }
        attempt.token = tokenAnswer.body.token;
        payment.payment_token = attempt.token;
        return postJSON(data.pay_url, payment, { "Idempotency-Key": attempt.key }).then(
          function (answer) {
            return afterBankCheck(answer, payment, attempt);
          }
        );
      })
      .then(
        function (answer) {
          if (answer) {
            handleAnswer(answer);
          }
        },
        function () {
          showAlert(text.network);
        }
      )
      .finally(function () {
        setBusy(false);
      });
  }

  // --- the processor's side: the card or bank account as a token ------------------------

  // The token of the card or bank account, as {status, body: {token}} (the sandbox's answer,
  // whatever it is), or {processorError} when Stripe.js refused the details.
  function tokenize(method, details, payment) {
    if (!stripe) {
      return postJSON(data.tokens_url, details);
    }
    var billing = { name: payment.payer_name, email: payment.payer_email };
    var params =
      method === "card"
        ? { type: "card", card: cardElement, billing_details: billing }
        : {
            type: "us_bank_account",
            us_bank_account: {
              routing_number: value("routing-number"),
              account_number: value("account-number"),
              account_type: value("account-type"),
              account_holder_type: "individual",
            },
            billing_details: billing,
          };
    return Promise.resolve(stripe.createPaymentMethod(params)).then(function (result) {
      if (result && result.paymentMethod && result.paymentMethod.id) {
        return { status: 200, body: { token: result.paymentMethod.id } };
      }
      return { processorError: (result && result.error) || {} };
    });
  }

  // Stripe.js's own message (in the payer's language) beside the field it is about; a
  // failure to reach Stripe at all is a network problem like any other.
  function showProcessorError(method, error) {
    var connection = error.type === "api_connection_error" || error.type === "rate_limit_error";
    if (connection || !error.message) {
      showAlert(connection ? text.network : text.rejected);
      return;
    }
    var field = method === "card" ? "card_element" : STRIPE_BANK_FIELDS[error.param];
    if (field) {
      showFieldErrors([[field, error.message]]);
    } else {
      showAlert(error.message);
    }
  }

  // Stripe.js's card field in #card-element. False when Stripe.js did not load (blocked, or
  // the network failed): then there is no safe way to take the card.
  function mountStripe() {
    if (typeof window.Stripe !== "function") {
      return false;
    }
    stripe = window.Stripe(data.stripe.publishable_key, { locale: data.stripe.locale });
    if (!byId("card-element")) {
      return true;
    }
    cardElement = stripe.elements().create("card", {
      style: { base: { fontSize: "16px", color: "#1d2733" }, invalid: { color: "#a4262c" } },
    });
    cardElement.mount("#card-element");
    cardElement.on("change", function (event) {
      cardChanges += 1;
      if (event && event.error) {
        showFieldError("card_element", event.error.message);
      } else {
        clearFieldError("card_element");
        dropSummaryIfAllRight();
      }
    });
    return true;
  }

  function showMethod() {
    var method = selectedMethod();
    document.querySelectorAll(".pay-secure").forEach(function (fieldset) {
      fieldset.hidden = fieldset.getAttribute("data-method") !== method;
    });
  }

  function showUnavailable() {
    var notice = byId("pay-unavailable");
    if (notice) {
      notice.hidden = false;
    }
  }

  form.addEventListener("submit", submit);
  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "method") {
      showMethod();
    }
  });
  amountInput.addEventListener("input", updateButtonLabel);
  section.addEventListener("input", recheckField);
  section.addEventListener("change", recheckField);
  // The card and bank fields are outside the form (they are the processor's), so Enter in
  // them would do nothing by itself.
  document.querySelectorAll(".pay-secure input").forEach(function (input) {
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        form.requestSubmit(button);
      }
    });
  });

  if (data.stripe && !mountStripe()) {
    // The form stays hidden: without Stripe.js the card could only come to us.
    showUnavailable();
    return;
  }
  section.hidden = false;
  showMethod();
  updateButtonLabel();
})();
