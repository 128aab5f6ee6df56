/*
 * ClientPay Connect: behaviour shared by every page. Loaded with `defer` from layout.jinja2;
 * the Content-Security-Policy allows no inline script, so pages opt in through attributes:
 *
 *   <button type="button" data-copy-target="#link-url">Copy link</button>
 *   <button type="button" data-copy-text="https://…">Copy</button>
 *       copies the target's value (input/textarea) or text, and announces "Copied"
 *       (data-copy-announcement="Link copied" to say something else).
 *   <button class="danger" data-confirm="Cancel 3 links?">Cancel selected</button>
 *       asks before the click (or the form submit) goes ahead. For htmx use hx-confirm.
 *   <div class="table-wrap">…</div>   (or Pico's .overflow-auto)
 *       becomes keyboard-focusable, so a wide table can be scrolled without a mouse.
 *
 * And for scripts of individual pages (served from static/, never inline):
 *
 *   clientpay.fetchJSON(url, {method: "PUT", body: {…}})
 *       fetch with the session's CSRF token (X-CSRF-Token) and JSON in and out; resolves to
 *       {ok, status, data, response} for every HTTP answer (API errors carry useful bodies:
 *       422 field errors, 409 conflicts) and rejects only when the network fails.
 *   clientpay.announce("Saved")     says something through the page's aria-live region.
 *   clientpay.copy("text")          copies; resolves when done.
 *   clientpay.csrfToken()           the token from <meta name="csrf-token">.
 *
 * htmx requests get the X-CSRF-Token header automatically (htmx:configRequest).
 */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  // The token must never travel to another site, whatever URL a page hands us.
  function isSameOrigin(url) {
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (error) {
      return false;
    }
  }

  function announce(message) {
    var region = document.getElementById("announcer");
    if (!region) {
      return;
    }
    // Emptied first and refilled a moment later, so that the same words twice in a row
    // ("Copied", "Copied") are read out twice.
    region.textContent = "";
    window.setTimeout(function () {
      region.textContent = message;
    }, 60);
  }

  function isPlainBody(body) {
    return (
      body !== undefined &&
      body !== null &&
      typeof body !== "string" &&
      !(body instanceof FormData) &&
      !(body instanceof URLSearchParams) &&
      !(body instanceof Blob) &&
      !(body instanceof ArrayBuffer)
    );
  }

  function fetchJSON(url, options) {
    var init = Object.assign({}, options || {});
    var headers = new Headers(init.headers || {});
    if (!headers.has("Accept")) {
      headers.set("Accept", "application/json");
    }
    var token = csrfToken();
    if (token && isSameOrigin(url) && !headers.has("X-CSRF-Token")) {
      headers.set("X-CSRF-Token", token);
    }
    if (isPlainBody(init.body)) {
      init.body = JSON.stringify(init.body);
      if (!headers.has("Content-Type")) {
        headers.set("Content-Type", "application/json");
      }
    }
    init.headers = headers;
    init.credentials = init.credentials || "same-origin";
    return window.fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var type = response.headers.get("Content-Type") || "";
        var data = null;
        if (text && type.indexOf("json") !== -1) {
          data = JSON.parse(text);
        }
        return { ok: response.ok, status: response.status, data: data, response: response };
      });
    });
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token && isSameOrigin(event.detail.path)) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  /* ---------- Copy to clipboard ---------- */

  // For when the Clipboard API is missing or refused: inside the matter software's iframe
  // it needs a permission the host page may not grant.
  function copyWithSelection(text) {
    var active = document.activeElement;
    var buffer = document.createElement("textarea");
    buffer.value = text;
    buffer.setAttribute("readonly", "");
    buffer.setAttribute("aria-hidden", "true");
    buffer.tabIndex = -1;
    buffer.className = "copy-buffer";
    document.body.appendChild(buffer);
    buffer.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } finally {
      document.body.removeChild(buffer);
      if (active && typeof active.focus === "function") {
        active.focus();
      }
    }
    return copied;
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        if (!copyWithSelection(text)) {
          throw new Error("copy refused");
        }
      });
    }
    return copyWithSelection(text) ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function textToCopy(trigger) {
    if (trigger.hasAttribute("data-copy-text")) {
      return trigger.getAttribute("data-copy-text");
    }
    var target = document.querySelector(trigger.getAttribute("data-copy-target"));
    if (!target) {
      return null;
    }
    if ("value" in target && typeof target.value === "string" && target.tagName !== "BUTTON") {
      return target.value;
    }
    return target.textContent.trim();
  }

  document.addEventListener("click", function (event) {
    var trigger = event.target.closest("[data-copy-target], [data-copy-text]");
    if (!trigger) {
      return;
    }
    event.preventDefault();
    var text = textToCopy(trigger);
    if (text === null) {
      announce("Nothing to copy.");
      return;
    }
    copy(text).then(
      function () {
        trigger.classList.add("is-copied");
        window.setTimeout(function () {
          trigger.classList.remove("is-copied");
        }, 2000);
        announce(trigger.getAttribute("data-copy-announcement") || "Copied");
      },
      function () {
        announce("Could not copy. Select the text and copy it yourself.");
      }
    );
  });

  /* ---------- Confirmation before a destructive action ---------- */

  document.addEventListener(
    "click",
    function (event) {
      var trigger = event.target.closest("[data-confirm]");
      if (trigger && trigger.tagName !== "FORM" && !window.confirm(trigger.getAttribute("data-confirm"))) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (form.hasAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  /* ---------- A field the server marked wrong, once it is changed ---------- */

  // The server's message stays true only of what was sent. Once the person changes the
  // field, and what it holds now passes the field's own checks (required, type, pattern),
  // the red mark and its message go; the server checks again on the next submit. The
  // summary at the top of the form stays: it says what was sent.
  function recheckMarkedField(event) {
    var field = event.target;
    if (!field || !field.getAttribute || field.getAttribute("aria-invalid") !== "true") {
      return;
    }
    if (typeof field.checkValidity === "function" && !field.checkValidity()) {
      return;
    }
    field.removeAttribute("aria-invalid");
    var error = field.id && document.getElementById(field.id + "-error");
    if (error) {
      error.hidden = true;
    }
  }

  document.addEventListener("input", recheckMarkedField);
  document.addEventListener("change", recheckMarkedField);

  /* ---------- The header's menu on narrow panels ---------- */

  function setUpMenu(header) {
    var toggle = header.querySelector(".nav-toggle");
    var menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    if (!menu) {
      return;
    }
    function setOpen(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      header.classList.toggle("nav-open", open);
    }
    toggle.hidden = false;
    header.classList.add("nav-collapsible");
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        toggle.focus();
      }
    });
  }

  /* ---------- Content that arrives later (htmx swaps) gets the same treatment ---------- */

  function enhance(root) {
    var wraps = root.querySelectorAll ? root.querySelectorAll(":is(.table-wrap, .overflow-auto):not([tabindex])") : [];
    Array.prototype.forEach.call(wraps, function (wrap) {
      wrap.setAttribute("tabindex", "0");
    });
  }

  var header = document.querySelector("[data-nav]");
  if (header) {
    setUpMenu(header);
  }
  enhance(document);
  document.addEventListener("htmx:load", function (event) {
    enhance(event.detail.elt);
  });

  window.clientpay = {
    announce: announce,
    copy: copy,
    csrfToken: csrfToken,
    fetchJSON: fetchJSON,
  };
})();
