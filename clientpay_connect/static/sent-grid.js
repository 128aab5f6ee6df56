/*
 * Sent Pages as a grid (Tabulator), in the place of the server-rendered table that the page
 * is without scripts. Everything is asked of the API, a page at a time: GET /api/v1/links
 * pages by cursor, sorts and filters on the server (so a sort or a filter covers every link,
 * not only the rows in view). The layout (columns, their order and widths, sort, filters,
 * Show) is saved in the user's preferences (PUT /api/v1/me/preferences, key "sent_grid"),
 * so that it comes back at the next sign-in, in any browser.
 */
(function () {
  "use strict";

  var app = document.getElementById("sent-grid-app");
  if (!app || !window.Tabulator || !window.clientpay) {
    return;
  }
  var config = JSON.parse(app.getAttribute("data-config"));
  var saved = config.layout || {};
  var USED = { paid: true, partially_paid: true, cancelled: true, expired: true };
  var SAVE_DELAY_MS = 500;
  var PAGE_SIZE = 25;

  // The grid's columns: the link's fields, in the default order; "visible" is the default.
  // filter: how its header filters it (the API's filter[...] parameters in apiFilters).
  var FIELDS = [
    { field: "recipient_name", filter: "text", visible: true, width: 180 },
    { field: "invoice_number", filter: "text", visible: true, width: 150 },
    { field: "status", filter: "status", visible: true, width: 160 },
    { field: "amount", filter: "amount", visible: true, width: 130 },
    { field: "amount_paid", filter: "amount", visible: true, width: 130 },
    { field: "amount_refunded", filter: null, visible: false, width: 140, sort: null },
    { field: "due_date", filter: "date", visible: true, width: 150 },
    { field: "created_at", filter: "date", visible: true, width: 150, firstDir: "desc" },
    { field: "emails", filter: "text", visible: true, width: 200 },
    { field: "invoice_date", filter: "date", visible: false, width: 150 },
    { field: "source", filter: "source", visible: false, width: 140 },
    { field: "merchant_account_id", filter: "account", visible: false, width: 170, sort: "merchant_account" },
    { field: "sent_at", filter: "date", visible: false, width: 150 },
    { field: "expires_at", filter: "date", visible: false, width: 150 },
    { field: "paid_at", filter: "date", visible: false, width: 150 },
    { field: "cancelled_at", filter: "date", visible: false, width: 150 },
    { field: "created_by", filter: "text", visible: false, width: 160 },
    { field: "reminders_sent", filter: "count", visible: false, width: 130 },
    { field: "first_opened_at", filter: "date", visible: false, width: 150 },
    { field: "last_opened_at", filter: "date", visible: false, width: 150 },
    { field: "url", filter: null, visible: false, width: 260, sort: null },
  ];
  var BY_FIELD = {};
  FIELDS.forEach(function (spec) {
    BY_FIELD[spec.field] = spec;
    if (spec.sort === undefined) {
      spec.sort = spec.field;
    }
  });
  var TIMESTAMPS = { created_at: 1, sent_at: 1, expires_at: 1, paid_at: 1, cancelled_at: 1, first_opened_at: 1, last_opened_at: 1 };
  // Shown in the link's currency, as the export and the link's page show them.
  var MONEY = { amount: 1, amount_paid: 1, amount_refunded: 1 };
  var AMOUNT_PATTERN = /^[0-9]{1,12}(\.[0-9]{1,2})?$/;
  var DAY_PATTERN = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

  var state = {
    view: config.views[saved.show] ? saved.show : "all",
    // The address's search first (a link into the page), else the one the user left.
    q: config.q || (typeof saved.q === "string" ? saved.q : ""),
    selected: {}, // id -> the row's data, across pages
    known: {}, // id -> the latest data of every row loaded
    cursors: [null], // cursors[n]: the cursor of page n + 1
    cursorKey: null,
    lastSaved: null,
    saveTimer: null,
    query: {},
    built: false,
    timerPending: false,
    inflight: 0,
    filterProblems: [],
    // Every load and count asked for gets the next number; an answer is shown only if no
    // later one was asked for meanwhile (a slow answer to an older sort, filter or page must
    // never replace the newer one's rows, summary, pages or cursors).
    loadSeq: 0,
    shownSeq: 0, // the load whose answer is shown (or said to have failed)
    countSeq: 0,
    // The requests of the load and of the counts in flight: a newer one aborts them, so that
    // typing in a filter does not leave the server answering every keystroke's query.
    loadAborter: null,
    countAborter: null,
  };

  var el = {
    grid: document.getElementById("sent-grid"),
    summary: document.getElementById("grid-summary"),
    status: app.querySelector("[data-grid-status]"),
    alert: app.querySelector("[data-grid-alert]"),
    cancel: app.querySelector("[data-grid-cancel]"),
    columnsButton: app.querySelector("[data-grid-columns]"),
    columnsPanel: document.getElementById("grid-columns"),
    columnList: app.querySelector("[data-grid-column-list]"),
    search: app.querySelector("[data-grid-search]"),
    searchInput: app.querySelector("[data-grid-search] input"),
    clearSearch: app.querySelector("[data-grid-clear]"),
    exportLink: document.querySelector("[data-export]"),
  };

  // --- Showing values ----------------------------------------------------------------------

  var dayFormat = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
  var timeFormat = new Intl.DateTimeFormat("en-US", {
    year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZone: config.zone,
  });

  function money(value, currency) {
    try {
      return new Intl.NumberFormat("en-US", { style: "currency", currency: currency }).format(Number(value));
    } catch (error) {
      return value + " " + currency;
    }
  }

  function accountName(id) {
    for (var i = 0; i < config.accounts.length; i++) {
      if (config.accounts[i].id === id) {
        return config.accounts[i].name;
      }
    }
    return "";
  }

  function linkName(data) {
    return data.invoice_number || "Link " + data.id;
  }

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value;
    return span;
  }

  function shown(field, data) {
    var value = data[field];
    if (value === null || value === undefined || value === "") {
      return "—";
    }
    if (MONEY[field]) {
      return money(value, data.currency);
    }
    if (TIMESTAMPS[field]) {
      return timeFormat.format(new Date(value));
    }
    if (field === "due_date" || field === "invoice_date") {
      return dayFormat.format(new Date(value + "T00:00:00Z"));
    }
    if (field === "emails") {
      return value.length ? value.join(", ") : "—";
    }
    if (field === "source") {
      return config.sources[value] || value;
    }
    if (field === "merchant_account_id") {
      return accountName(value);
    }
    return String(value);
  }

  function formatter(field) {
    return function (cell) {
      var data = cell.getRow().getData();
      if (field === "status") {
        var badge = text(config.statuses[data.status] || data.status);
        badge.className = "badge badge-" + data.status;
        return badge;
      }
      return text(shown(field, data));
    };
  }

  // The first column, frozen: tick, the link's details, copy its payer's link, its balance.
  function linkCell(cell) {
    var data = cell.getRow().getData();
    var name = linkName(data);
    var box = document.createElement("span");
    box.className = "grid-link-cell";

    var tick = document.createElement("input");
    tick.type = "checkbox";
    tick.setAttribute("aria-label", "Select " + name);
    tick.checked = Boolean(state.selected[data.id]);
    tick.addEventListener("change", function () {
      if (tick.checked) {
        state.selected[data.id] = data;
      } else {
        delete state.selected[data.id];
      }
    });
    box.appendChild(tick);

    var details = document.createElement("a");
    details.href = config.detail + data.id;
    details.textContent = name;
    details.title = "Details of " + name;
    box.appendChild(details);

    if (!USED[data.status]) {
      var copy = document.createElement("button");
      copy.type = "button";
      copy.className = "grid-icon-button";
      copy.title = "Copy the payment link";
      copy.setAttribute("aria-label", "Copy the payment link of " + name);
      copy.innerHTML =
        '<svg aria-hidden="true" focusable="false" width="16" height="16" viewBox="0 0 16 16"><path fill="currentColor" d="M5 1h6v2h2v12H3V3h2zm1 1v2h4V2zM4 4v10h8V4h-1v1H5V4z"/></svg>';
      copy.addEventListener("click", function () {
        window.clientpay.copy(data.url).then(function () {
          window.clientpay.announce("Link copied");
        });
      });
      box.appendChild(copy);
    }
    if (data.status === "partially_paid") {
      var balance = document.createElement("a");
      balance.className = "grid-balance";
      if (data.balance_link_id) {
        balance.href = config.detail + data.balance_link_id;
        balance.textContent = "Balance link";
      } else {
        balance.href = config.detail + data.id + "#balance-heading";
        balance.textContent = "Make a balance link";
      }
      balance.setAttribute("aria-label", balance.textContent + " of " + name);
      box.appendChild(balance);
    }
    return box;
  }

  // --- Header filters ----------------------------------------------------------------------

  function labelled(tag, label, attributes) {
    var input = document.createElement(tag);
    input.setAttribute("aria-label", label);
    Object.keys(attributes || {}).forEach(function (name) {
      input.setAttribute(name, attributes[name]);
    });
    // The header's own handlers (sort on click, drag) must not see what happens in a filter.
    ["click", "mousedown", "keydown"].forEach(function (type) {
      input.addEventListener(type, function (event) {
        event.stopPropagation();
      });
    });
    return input;
  }

  function debounced(fn, ms) {
    var timer = null;
    return function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(fn, ms);
    };
  }

  function choiceEditor(options) {
    return function (cell, onRendered, success) {
      var title = cell.getColumn().getDefinition().title;
      var select = labelled("select", "Filter " + title);
      var any = document.createElement("option");
      any.value = "";
      any.textContent = "Any";
      select.appendChild(any);
      options().forEach(function (option) {
        var element = document.createElement("option");
        element.value = String(option.value);
        element.textContent = option.label;
        select.appendChild(element);
      });
      select.value = cell.getValue() || "";
      select.addEventListener("change", function () {
        success(select.value);
      });
      return select;
    };
  }

  var popoverCount = 0;

  // Several values at once (status): a button that opens a popover of checkboxes. A popover
  // sits in the top layer, so the header's clipping (the grid's overflow and transform) does
  // not cut it off, and it comes next after its button in the Tab order; Escape or a click
  // elsewhere closes it. Each tick filters at once; none ticked is "Any".
  function multiChoiceEditor(options) {
    return function (cell, onRendered, success) {
      var title = cell.getColumn().getDefinition().title;
      var chosen = Array.isArray(cell.getValue()) ? cell.getValue().slice() : [];
      var box = document.createElement("span");
      box.className = "grid-choices";
      var id = "grid-choices-" + ++popoverCount;
      var button = labelled("button", "", { type: "button", popovertarget: id });
      button.className = "secondary outline grid-choices-button";
      var panel = document.createElement("fieldset");
      panel.id = id;
      panel.setAttribute("popover", "auto");
      panel.className = "grid-choices-panel";
      var legend = document.createElement("legend");
      legend.textContent = title;
      panel.appendChild(legend);
      var labels = {};
      options().forEach(function (option) {
        var value = String(option.value);
        labels[value] = option.label;
        var label = document.createElement("label");
        var tick = document.createElement("input");
        tick.type = "checkbox";
        tick.value = value;
        tick.checked = chosen.indexOf(value) !== -1;
        tick.addEventListener("change", function () {
          chosen = panel.querySelectorAll("input:checked");
          chosen = Array.prototype.map.call(chosen, function (input) { return input.value; });
          describe();
          success(chosen.length ? chosen : "");
        });
        label.appendChild(tick);
        label.appendChild(document.createTextNode(" " + option.label));
        panel.appendChild(label);
      });
      // The popover is inside the header: its clicks and keys are not the header's (sort, drag).
      ["click", "mousedown", "keydown"].forEach(function (type) {
        panel.addEventListener(type, function (event) {
          event.stopPropagation();
        });
      });
      panel.addEventListener("toggle", function (event) {
        if (event.newState === "open") {
          placeUnder(button, panel);
        }
      });
      // Fixed in the window, it follows its button when the page or the grid scrolls.
      window.addEventListener(
        "scroll",
        function () {
          if (panel.matches(":popover-open")) {
            placeUnder(button, panel);
          }
        },
        { capture: true, passive: true }
      );
      function describe() {
        // Every choice, cut short by the column's width (its title shows them all): the name
        // read out holds the text shown.
        var shown = chosen.length ? chosen.map(function (value) { return labels[value]; }).join(", ") : "Any";
        button.textContent = shown;
        button.title = shown;
        button.setAttribute("aria-label", "Filter " + title + ": " + shown);
      }
      describe();
      box.appendChild(button);
      box.appendChild(panel);
      return box;
    };
  }

  // Under the button if it fits in the window, else above it, else as low as the window
  // allows; never past either side.
  function placeUnder(button, panel) {
    var place = button.getBoundingClientRect();
    var size = panel.getBoundingClientRect();
    var gap = 2;
    var top = place.bottom + gap;
    if (top + size.height > window.innerHeight && place.top - gap - size.height >= 0) {
      top = place.top - gap - size.height;
    }
    top = Math.max(0, Math.min(top, window.innerHeight - size.height));
    var left = Math.max(0, Math.min(place.left, document.documentElement.clientWidth - size.width));
    panel.style.top = Math.floor(top) + "px";
    panel.style.left = Math.floor(left) + "px";
  }

  function textEditor(cell, onRendered, success) {
    var title = cell.getColumn().getDefinition().title;
    // Its placeholder is the column's headerFilterPlaceholder: Tabulator sets it on the
    // element an editor returns, over any the editor gave.
    var input = labelled("input", "Filter " + title + " (contains)", { type: "search", maxlength: "254" });
    input.value = cell.getValue() || "";
    input.addEventListener("input", debounced(function () {
      success(input.value.trim());
    }, 400));
    return input;
  }

  // Two inputs (from–to, min–max): the filter's value is an object of the ends given.
  function rangeEditor(ends, type, labels) {
    return function (cell, onRendered, success) {
      var title = cell.getColumn().getDefinition().title;
      var value = cell.getValue() || {};
      var box = document.createElement("span");
      // A date needs the column's whole width to be read (mm/dd/yyyy): from above to.
      box.className = type === "date" ? "grid-range grid-range-stacked" : "grid-range";
      var inputs = ends.map(function (end, index) {
        var attributes = { type: type, placeholder: labels[index] };
        if (type === "text") {
          attributes.inputmode = "decimal";
          attributes.size = "6";
        }
        var input = labelled("input", title + " " + labels[index].toLowerCase(), attributes);
        input.value = value[end] === undefined ? "" : String(value[end]);
        box.appendChild(input);
        return input;
      });
      var changed = debounced(function () {
        var range = {};
        inputs.forEach(function (input, index) {
          if (input.value.trim() !== "") {
            range[ends[index]] = input.value.trim();
          }
        });
        success(Object.keys(range).length ? range : "");
      }, 400);
      inputs.forEach(function (input) {
        input.addEventListener("input", changed);
        input.addEventListener("change", changed);
      });
      return box;
    };
  }

  // The statuses in the order of a link's life, as the Show tabs have them (the page's
  // config lists them by name).
  var LIFE_ORDER = ["outstanding", "processing", "paid", "partially_paid", "cancelled", "expired"];

  function byLifeOrder(a, b) {
    var first = LIFE_ORDER.indexOf(a) === -1 ? LIFE_ORDER.length : LIFE_ORDER.indexOf(a);
    var second = LIFE_ORDER.indexOf(b) === -1 ? LIFE_ORDER.length : LIFE_ORDER.indexOf(b);
    return first - second || (a < b ? -1 : 1);
  }

  var EDITORS = {
    text: textEditor,
    amount: rangeEditor(["min", "max"], "text", ["Min", "Max"]),
    count: rangeEditor(["min", "max"], "number", ["Min", "Max"]),
    date: rangeEditor(["from", "to"], "date", ["From", "To"]),
    status: multiChoiceEditor(function () {
      return Object.keys(config.statuses).sort(byLifeOrder).map(function (key) {
        return { value: key, label: config.statuses[key] };
      });
    }),
    source: choiceEditor(function () {
      return Object.keys(config.sources).map(function (key) {
        return { value: key, label: config.sources[key] };
      });
    }),
    account: choiceEditor(function () {
      return config.accounts.map(function (account) {
        return { value: account.id, label: account.name };
      });
    }),
  };

  // A header filter's value as the API takes it: {"filter[name]": value}; what it cannot
  // take is added to ``problems``.
  function apiFilters(field, value, problems) {
    var spec = BY_FIELD[field];
    var params = {};
    if (!spec || value === "" || value === null || value === undefined) {
      return params;
    }
    if (spec.filter === "text") {
      params["filter[" + field + "_contains]"] = value;
    } else if (spec.filter === "status") {
      params["filter[status]"] = value.join(",");
    } else if (spec.filter === "source") {
      params["filter[source]"] = value;
    } else if (spec.filter === "account") {
      params["filter[merchant_account_id]"] = value;
    } else {
      Object.keys(value).forEach(function (end) {
        var problem = rangeProblem(spec.filter, value[end]);
        if (problem) {
          problems.push(config.titles[field] + " " + end + ": " + problem);
        } else {
          params["filter[" + field + "_" + end + "]"] = value[end];
        }
      });
    }
    return params;
  }

  // What the API would refuse, said in the grid's words; the filter is left out until then.
  function rangeProblem(kind, value) {
    if (kind === "amount" && !/^[0-9]{1,12}(\.[0-9]{1,3})?$/.test(value)) {
      return "give a plain number, such as 100.00.";
    }
    if (kind === "count" && !/^[0-9]{1,6}$/.test(value)) {
      return "give a whole number.";
    }
    if (kind === "date" && !DAY_PATTERN.test(value)) {
      return "give a day.";
    }
    return null;
  }

  // The same value as the preferences keep it (their document is stricter: an amount has at
  // most two decimals, a status filter is a list); what they cannot hold is not kept.
  function savedFilter(field, value) {
    var spec = BY_FIELD[field];
    if (spec.filter === "text") {
      return value.slice(0, 254);
    }
    if (spec.filter === "status") {
      return value.slice();
    }
    if (spec.filter === "source") {
      return [value];
    }
    if (spec.filter === "account") {
      return [Number(value)];
    }
    var range = {};
    Object.keys(value).forEach(function (end) {
      var part = value[end];
      if (spec.filter === "amount" && AMOUNT_PATTERN.test(part)) {
        range[end] = part;
      } else if (spec.filter === "count" && /^[0-9]{1,4}$/.test(part) && Number(part) <= 1000) {
        range[end] = Number(part);
      } else if (spec.filter === "date" && DAY_PATTERN.test(part)) {
        range[end] = part;
      }
    });
    return Object.keys(range).length ? range : null;
  }

  function restoredFilter(field, value) {
    var spec = BY_FIELD[field];
    if (!spec || !spec.filter) {
      return null;
    }
    if (Array.isArray(value) && spec.filter === "status") {
      return value.length ? value.map(String) : null;
    }
    // Source and merchant account pick one value (the API matches them by equality); their
    // preferences are lists, of which the grid shows the first.
    if (Array.isArray(value)) {
      return value.length ? String(value[0]) : null;
    }
    if (typeof value === "object" && value !== null) {
      var range = {};
      Object.keys(value).forEach(function (end) {
        range[end] = String(value[end]);
      });
      return range;
    }
    return value;
  }

  // --- Columns -----------------------------------------------------------------------------

  function columnOrder() {
    var order = [];
    var seen = {};
    (saved.columns || []).forEach(function (column) {
      if (BY_FIELD[column.field] && !seen[column.field]) {
        seen[column.field] = true;
        order.push(column);
      }
    });
    FIELDS.forEach(function (spec) {
      if (!seen[spec.field]) {
        order.push({ field: spec.field, visible: spec.visible });
      }
    });
    return order;
  }

  function columnDefinitions() {
    var columns = [
      {
        field: "id",
        title: "Link",
        frozen: true,
        headerSort: false,
        resizable: false,
        formatter: linkCell,
        width: 210,
        cssClass: "grid-link-column",
      },
    ];
    columnOrder().forEach(function (column) {
      var spec = BY_FIELD[column.field];
      columns.push({
        field: spec.field,
        title: config.titles[spec.field],
        visible: column.visible !== false,
        width: column.width || spec.width,
        minWidth: 60,
        headerSort: Boolean(spec.sort),
        headerSortStartingDir: spec.firstDir || "asc",
        formatter: formatter(spec.field),
        headerFilter: spec.filter ? EDITORS[spec.filter] : false,
        headerFilterPlaceholder: spec.filter === "text" ? "Contains…" : "",
        headerFilterLiveFilter: false,
      });
    });
    return columns;
  }

  function fieldColumns() {
    return table.getColumns().filter(function (column) {
      return Boolean(BY_FIELD[column.getField()]);
    });
  }

  function renderColumnList() {
    el.columnList.textContent = "";
    var columns = fieldColumns();
    columns.forEach(function (column, index) {
      var field = column.getField();
      var title = config.titles[field];
      var item = document.createElement("li");
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = column.isVisible();
      box.setAttribute("data-field", field);
      box.addEventListener("change", function () {
        if (box.checked) {
          column.show();
        } else {
          column.hide();
        }
        layoutChanged();
      });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + title));
      item.appendChild(label);
      [["up", "Move " + title + " left", "↑", index > 0], ["down", "Move " + title + " right", "↓", index < columns.length - 1]].forEach(function (move) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "secondary outline grid-move";
        button.setAttribute("aria-label", move[1]);
        button.textContent = move[2];
        button.disabled = !move[3];
        button.addEventListener("click", function () {
          var other = columns[move[0] === "up" ? index - 1 : index + 1];
          column.move(other, move[0] !== "up");
          renderColumnList();
          var again = el.columnList.querySelector('[aria-label="' + move[1] + '"]');
          if (again && !again.disabled) {
            again.focus();
          }
          layoutChanged();
        });
        item.appendChild(button);
      });
      el.columnList.appendChild(item);
    });
  }

  function setPanelOpen(open) {
    el.columnsPanel.hidden = !open;
    el.columnsButton.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      renderColumnList();
      var first = el.columnList.querySelector("input");
      if (first) {
        first.focus();
      }
    }
  }

  el.columnsButton.addEventListener("click", function () {
    setPanelOpen(el.columnsPanel.hidden);
  });
  el.columnsPanel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      setPanelOpen(false);
      el.columnsButton.focus();
    }
  });

  // --- Loading pages -----------------------------------------------------------------------

  function apiQuery(sorters, filters) {
    var query = {};
    if (state.view !== "all") {
      query.status = state.view;
    }
    if (state.q) {
      query.q = state.q;
    }
    if (sorters && sorters.length) {
      var spec = BY_FIELD[sorters[0].field];
      if (spec && spec.sort) {
        query.sort = (sorters[0].dir === "desc" ? "-" : "") + spec.sort;
      }
    }
    var problems = [];
    (filters || []).forEach(function (filter) {
      Object.assign(query, apiFilters(filter.field, filter.value, problems));
    });
    state.filterProblems = problems;
    return query;
  }

  function queryString(params) {
    return new URLSearchParams(params).toString();
  }

  // An answer that a later load has overtaken: Tabulator is left waiting for it for good, so
  // that it neither shows its rows nor takes its page count (Tabulator reads an answer's
  // last_page before checking that it is the latest).
  function overtaken() {
    return new Promise(function () {});
  }

  // Pages come by cursor: page n needs the cursor that page n - 1 gave. A jump ahead walks the
  // pages between (the cursors stay valid when rows come and go, so they are kept).
  function loadPage(query, size, page, isCurrent, signal) {
    var key = queryString(query) + "&limit=" + size;
    if (key !== state.cursorKey) {
      state.cursorKey = key;
      state.cursors = [null];
    }
    // This query's own cursors: a newer query's list is never written by an older walk.
    var cursors = state.cursors;
    function step(n) {
      var params = Object.assign({}, query, { limit: size });
      if (cursors[n - 1]) {
        params.cursor = cursors[n - 1];
      }
      return window.clientpay.fetchJSON(config.api + "?" + queryString(params), { signal: signal }).then(function (answer) {
        if (!isCurrent()) {
          return answer;
        }
        if (!answer.ok) {
          throw answer;
        }
        cursors[n] = answer.data.next_cursor;
        if (n >= page || !answer.data.next_cursor) {
          return answer.data;
        }
        return step(n + 1);
      });
    }
    return step(Math.min(page, cursors.length));
  }

  // Aborts the request(s) that state[key]'s signal went to, if any, and hands out a new one.
  function renewAborter(key) {
    if (state[key]) {
      state[key].abort();
    }
    state[key] = new AbortController();
    return state[key].signal;
  }

  function load(url, ajaxConfig, params) {
    var seq = ++state.loadSeq;
    var signal = renewAborter("loadAborter");
    function isCurrent() {
      return seq === state.loadSeq;
    }
    var query = apiQuery(params.sort, params.filter);
    state.query = query;
    var size = params.size || PAGE_SIZE;
    var page = params.page || 1;
    updateExportLink();
    updateClearButton();
    refreshCounts(query);
    el.summary.textContent = "Loading…";
    return loadPage(query, size, page, isCurrent, signal).then(
      function (body) {
        if (!isCurrent()) {
          return overtaken();
        }
        state.shownSeq = seq;
        return shownPage(body, size, page);
      },
      function (answer) {
        if (!isCurrent()) {
          return overtaken();
        }
        state.shownSeq = seq;
        showProblem(answer);
        state.loadProblem = true;
        el.summary.textContent = "No links shown.";
        return { last_page: 1, last_row: 0, data: [] };
      }
    );
  }

  function shownPage(body, size, page) {
    body.items.forEach(function (item) {
      state.known[item.id] = item;
      if (state.selected[item.id]) {
        state.selected[item.id] = item;
      }
    });
    if (state.filterProblems.length) {
      say("", "Left out of the filters: " + state.filterProblems.join(" "));
      state.loadProblem = true;
    } else if (state.loadProblem) {
      state.loadProblem = false;
      el.alert.textContent = "";
    }
    var first = body.total ? (page - 1) * size + 1 : 0;
    el.summary.textContent = body.total
      ? "Links " + first + "–" + (first + body.items.length - 1) + " of " + body.total
      : "No links match.";
    layoutChanged();
    return { last_page: Math.max(1, Math.ceil(body.total / size)), last_row: body.total, data: body.items };
  }

  function showProblem(answer) {
    var errors = (answer && answer.data && answer.data.errors) || [];
    var message = errors.length
      ? errors.map(function (error) { return error.field + ": " + error.message; }).join(" ")
      : "The links could not be loaded. Try again.";
    say("", message);
  }

  function refreshCounts(query) {
    var params = Object.assign({}, query);
    delete params.status;
    var seq = ++state.countSeq;
    var signal = renewAborter("countAborter");
    window.clientpay.fetchJSON(config.counts + "?" + queryString(params), { signal: signal }).then(function (answer) {
      if (!answer.ok || seq !== state.countSeq) {
        return;
      }
      Object.keys(answer.data).forEach(function (view) {
        var count = app.querySelector('[data-count="' + view + '"]');
        if (count) {
          count.textContent = answer.data[view];
        }
      });
    }, function () {
      // Overtaken (aborted) or lost on the way: the counts shown stay until the next load.
    });
  }

  function updateExportLink() {
    if (!el.exportLink) {
      return;
    }
    var params = Object.assign({}, state.query);
    var fields = fieldColumns()
      .filter(function (column) { return column.isVisible(); })
      .map(function (column) { return column.getField(); });
    if (fields.length) {
      params.columns = fields.join(",");
    }
    el.exportLink.href = config.export + "?" + queryString(params);
  }

  // --- Saving the layout -------------------------------------------------------------------

  function layoutNow() {
    var layout = {
      columns: fieldColumns().map(function (column) {
        return {
          field: column.getField(),
          visible: column.isVisible(),
          width: Math.max(40, Math.min(2000, Math.round(column.getWidth()))),
        };
      }),
      show: state.view,
      filters: {},
    };
    if (state.q) {
      layout.q = state.q.slice(0, 200);
    }
    var sorters = table.getSorters();
    if (sorters.length && BY_FIELD[sorters[0].field]) {
      layout.sort = (sorters[0].dir === "desc" ? "-" : "") + BY_FIELD[sorters[0].field].sort;
    }
    table.getHeaderFilters().forEach(function (filter) {
      if (filter.value === "" || filter.value === null || filter.value === undefined) {
        return;
      }
      var value = savedFilter(filter.field, filter.value);
      if (value !== null && value !== "") {
        layout.filters[filter.field] = value;
      }
    });
    return layout;
  }

  function layoutChanged() {
    if (!state.built) {
      return;
    }
    updateExportLink();
    state.timerPending = true;
    window.clearTimeout(state.saveTimer);
    state.saveTimer = window.setTimeout(saveLayout, SAVE_DELAY_MS);
  }

  function saveLayout() {
    state.timerPending = false;
    var layout = layoutNow();
    var text = JSON.stringify(layout);
    if (text === state.lastSaved) {
      return;
    }
    state.lastSaved = text;
    state.inflight += 1;
    window.clientpay
      .fetchJSON(config.preferences, { method: "PUT", body: { sent_grid: layout } })
      .then(function (answer) {
        if (!answer.ok) {
          say("", "Your layout could not be saved: " + ((answer.data && answer.data.message) || answer.status) + ".");
        }
      })
      .finally(function () {
        state.inflight -= 1;
      });
  }

  // --- Tabs, search, cancel ----------------------------------------------------------------

  function showTab(view) {
    state.view = view;
    Array.prototype.forEach.call(app.querySelectorAll("[data-view]"), function (tab) {
      if (tab.getAttribute("data-view") === view) {
        tab.setAttribute("aria-current", "page");
      } else {
        tab.removeAttribute("aria-current");
      }
    });
  }

  Array.prototype.forEach.call(app.querySelectorAll("[data-view]"), function (tab) {
    tab.addEventListener("click", function (event) {
      event.preventDefault();
      showTab(tab.getAttribute("data-view"));
      table.setPage(1);
    });
  });

  function searchFor(q) {
    state.q = q;
    table.setPage(1);
  }

  el.search.addEventListener("submit", function (event) {
    event.preventDefault();
    searchFor(el.searchInput.value.trim());
  });
  // The field's own clear (×) empties it: that clears the search as the button does.
  el.searchInput.addEventListener("search", function () {
    if (el.searchInput.value === "" && state.q) {
      searchFor("");
    }
  });
  el.clearSearch.addEventListener("click", function (event) {
    event.preventDefault();
    el.searchInput.value = "";
    el.searchInput.focus();
    searchFor("");
  });

  function updateClearButton() {
    el.clearSearch.hidden = !state.q;
  }

  function say(status, alert) {
    el.status.textContent = status;
    el.alert.textContent = alert;
  }

  function nameOf(id) {
    var data = state.selected[id] || state.known[id];
    return data ? linkName(data) : "link " + id;
  }

  function cancelMessage(result) {
    var parts = [];
    if (result.cancelled.length) {
      var noun = result.cancelled.length === 1 ? "link" : "links";
      parts.push(
        "Cancelled " + result.cancelled.length + " " + noun + ": " +
          result.cancelled.map(nameOf).join(", ") + ". They can no longer be paid."
      );
    }
    return parts.join(" ");
  }

  function skippedMessage(result) {
    var closed = result.skipped.filter(function (skip) { return skip.reason !== "not_found"; });
    var missing = result.skipped.length - closed.length;
    var parts = [];
    if (closed.length) {
      var noun = closed.length === 1 ? "link was" : "links were";
      parts.push(
        closed.length + " " + noun + " not cancelled, because only outstanding links can be: " +
          closed.map(function (skip) {
            return nameOf(skip.id) + " is " + (config.statuses[skip.status] || skip.status).toLowerCase();
          }).join("; ") + "."
      );
    }
    if (missing) {
      parts.push(missing + (missing === 1 ? " selected link was" : " selected links were") + " not found.");
    }
    return parts.join(" ");
  }

  el.cancel.addEventListener("click", function () {
    var ids = Object.keys(state.selected).map(Number);
    if (!ids.length) {
      say("", "Select the links to cancel first: tick them in the Link column.");
      return;
    }
    var what = ids.length === 1 ? "the selected link" : "the " + ids.length + " selected links";
    if (!window.confirm("Cancel " + what + "? Your clients will no longer be able to pay with them. Only outstanding links are cancelled.")) {
      return;
    }
    window.clientpay.fetchJSON(config.cancel, { method: "POST", body: { ids: ids } }).then(function (answer) {
      if (!answer.ok) {
        showProblem(answer);
        return;
      }
      say(cancelMessage(answer.data), skippedMessage(answer.data));
      state.selected = {};
      // The same page again, as it was: same Show, search, sort, filters and columns.
      table.setPage(table.getPage() || 1);
    });
  });

  // --- The grid ----------------------------------------------------------------------------

  var initialFilters = [];
  Object.keys(saved.filters || {}).forEach(function (field) {
    var value = restoredFilter(field, saved.filters[field]);
    if (value !== null && value !== "") {
      initialFilters.push({ field: field, value: value });
    }
  });
  // The API's own default order (newest first) unless the user chose another: the header
  // shows it either way.
  var sortParam = saved.sort || "-created_at";
  var initialSort = [];
  FIELDS.forEach(function (spec) {
    if (spec.sort === sortParam.replace(/^-/, "")) {
      initialSort.push({ column: spec.field, dir: sortParam.charAt(0) === "-" ? "desc" : "asc" });
    }
  });

  var table = new window.Tabulator(el.grid, {
    index: "id",
    columns: columnDefinitions(),
    layout: "fitData",
    movableColumns: true,
    columnHeaderSortMulti: false,
    headerSortClickElement: "header",
    pagination: true,
    paginationMode: "remote",
    paginationSize: PAGE_SIZE,
    paginationSizeSelector: [25, 50, 100],
    // Pages are reached by cursor, one after the other: the buttons offer the pages next to
    // this one (and the first), never a jump to the last (sent.css hides it), which on a
    // firm's whole history would mean walking every page between.
    paginationButtonCount: 3,
    // Outside the grid's box: a grid (role="grid") may only hold rows.
    paginationElement: document.getElementById("sent-grid-pager"),
    sortMode: "remote",
    filterMode: "remote",
    ajaxURL: config.api,
    ajaxRequestFunc: load,
    initialSort: initialSort,
    initialHeaderFilter: initialFilters,
    placeholder: "No links match.",
    // The summary says when a page is on its way; the loader's overlay would also be read
    // out (role="alert") at every page.
    dataLoader: false,
  });

  // A header click sorts by what was last asked for, not by what the header shows: in remote
  // mode Tabulator turns the header's arrow only when the rows arrive, so its own handler, on
  // a second click before then, would ask for the same direction again. This one runs first
  // (capturing) and keeps Tabulator's from running.
  el.grid.addEventListener(
    "click",
    function (event) {
      var header = event.target.closest(".tabulator-col");
      if (!header || event.target.closest(".tabulator-header-filter, .tabulator-col-resize-handle")) {
        return;
      }
      var column = sortableColumn(header);
      if (!column) {
        return;
      }
      event.stopPropagation();
      table.setSort(column.getField(), nextSortDir(column));
    },
    true
  );

  function sortableColumn(header) {
    var found = null;
    table.getColumns().forEach(function (column) {
      if (column.getElement() === header && column.getDefinition().headerSort) {
        found = column;
      }
    });
    return found;
  }

  function nextSortDir(column) {
    var sorters = table.getSorters();
    if (sorters.length && sorters[0].field === column.getField()) {
      return sorters[0].dir === "asc" ? "desc" : "asc";
    }
    return column.getDefinition().headerSortStartingDir || "asc";
  }

  table.on("columnVisibilityChanged", fixHeaders);
  table.on("tableBuilt", function () {
    fixHeaders();
    state.lastSaved = JSON.stringify(layoutNow());
    state.built = true;
    app.setAttribute("data-ready", "yes");
  });
  table.on("dataProcessed", function () {
    app.setAttribute("data-loaded", String(Number(app.getAttribute("data-loaded") || 0) + 1));
  });
  ["columnMoved", "columnResized", "columnVisibilityChanged"].forEach(function (event) {
    table.on(event, function () {
      layoutChanged();
      if (!el.columnsPanel.hidden && event === "columnMoved") {
        renderColumnList();
      }
    });
  });

  // Sorting by keyboard: a sortable header takes the focus, and Enter or Space sorts as a
  // click does (the header's filter inputs keep their keys to themselves).
  function fixHeaders() {
    table.getColumns().forEach(function (column) {
      var header = column.getElement();
      if (!column.getDefinition().headerSort || header.hasAttribute("tabindex")) {
        return;
      }
      header.setAttribute("tabindex", "0");
      header.addEventListener("keydown", function (event) {
        if (event.target === header && (event.key === "Enter" || event.key === " ")) {
          event.preventDefault();
          header.click();
        }
      });
    });
    // The rows' box is focusable for Tabulator's own keys; a grid may only own rows, and every
    // cell's links and buttons are reachable by Tab anyway.
    var holder = el.grid.querySelector(".tabulator-tableholder");
    if (holder) {
      holder.removeAttribute("tabindex");
    }
  }

  showTab(state.view);
  el.searchInput.value = state.q;
  updateClearButton();
  var fallback = document.getElementById("sent-fallback");
  if (fallback) {
    fallback.remove();
  }
  app.hidden = false;
  // For the browser tests: whether the layout as shown has been saved (a load on its way
  // saves it again when it comes).
  window.sentGrid = {
    table: table,
    settled: function () {
      return (
        Boolean(state.built) && state.shownSeq === state.loadSeq && !state.timerPending && state.inflight === 0
      );
    },
  };
})();
