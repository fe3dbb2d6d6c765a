// The operator's page. Plain script, no build step. Every text that comes from the ledger,
// the config or a client (prompts, answers, user ids, model names) reaches the page through
// textContent or a text node, never as HTML: nothing here assigns innerHTML.
"use strict";

(function () {
  const api = "/dashboard/api/";
  let csrf = null;
  let role = null;
  let current = "overview";
  let callsCursor = null;
  let shownCall = null;
  const charts = {};

  const $ = (id) => document.getElementById(id);

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on") || name === "style") throw new Error("not here: " + name);
      if (name === "class") node.className = value;
      else if (name.startsWith("data-")) node.setAttribute(name, String(value));
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(text(child)));
    }
    return node;
  }

  function text(value) {
    return value === null || value === undefined ? "–" : String(value);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function percent(fraction) {
    return fraction === null || fraction === undefined ? "–" : (fraction * 100).toFixed(2) + " %";
  }

  function usd(amount) {
    return amount === null || amount === undefined ? "–" : Number(amount).toFixed(6);
  }

  async function request(method, path, body) {
    const headers = {};
    if (method !== "GET") headers["x-csrf-token"] = csrf || "";
    if (body !== undefined) headers["content-type"] = "application/json";
    const answer = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const doc = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const message = (doc.error && doc.error.message) || answer.statusText;
      const failure = new Error(message);
      failure.status = answer.status;
      throw failure;
    }
    return doc;
  }

  function showError(error) {
    const box = $("error");
    box.textContent = error ? error.message : "";
    box.hidden = !error;
    if (error && error.status === 401) signedOut();
  }

  function signedOut() {
    csrf = role = null;
    $("nav").hidden = true;
    $("who").hidden = true;
    for (const view of document.querySelectorAll(".view")) view.hidden = true;
    $("signin").hidden = false;
  }

  function signedIn(session) {
    csrf = session.csrf_token;
    role = session.role;
    $("signin").hidden = true;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("role").textContent = role === "admin" ? "admin" : "read-only";
    document.body.dataset.role = role;
    show(current);
  }

  async function show(view) {
    current = view;
    for (const button of document.querySelectorAll("nav button")) {
      button.classList.toggle("active", button.dataset.view === view);
    }
    for (const section of document.querySelectorAll(".view")) {
      section.hidden = section.id !== "view-" + view;
    }
    showError(null);
    try {
      await loaders[view]();
      document.body.dataset.loaded = view;
    } catch (error) {
      showError(error);
    }
  }

  function chart(id, series, data) {
    const box = $(id);
    if (charts[id]) charts[id].destroy();
    clear(box);
    const width = Math.max(400, box.clientWidth || 800);
    charts[id] = new uPlot({ width, height: 220, series, axes: [{}, {}] }, data, box);
  }

  const palette = ["#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#64748b", "#a3a3a3"];

  async function loadOverview() {
    const range = $("range").value;
    const by = $("spend-by").value;
    const doc = await request("GET", api + "overview?range=" + encodeURIComponent(range) + "&spend_by=" + encodeURIComponent(by));
    const totals = doc.totals;
    $("total-calls").textContent = text(totals.calls);
    $("total-cost").textContent = usd(totals.cost_usd);
    $("total-cost").title = totals.cost_usd;
    $("error-rate").textContent = percent(totals.error_rate);
    $("truncation-rate").textContent = percent(totals.truncation_rate);
    const l = totals.latency_ms, t = totals.ttft_ms;
    $("latency").textContent = [l.p50, l.p95, l.p99].map(text).join(" / ");
    $("ttft").textContent = [t.p50, t.p95, t.p99].map(text).join(" / ");
    $("response-cache").textContent = totals.response_cache_hits + " (" + percent(totals.response_cache_hit_rate) + ")";
    $("unpriced").textContent = text(totals.unpriced_calls);
    const x = doc.buckets;
    const spendSeries = [{}];
    const spendData = [x];
    doc.spend.groups.forEach((group, index) => {
      spendSeries.push({ label: group.name === null ? "(none)" : String(group.name), stroke: palette[index % palette.length] });
      spendData.push(group.values);
    });
    chart("chart-spend", spendSeries, spendData);
    const s = doc.series;
    chart("chart-calls", [{}, { label: "calls", stroke: palette[0] }, { label: "errors", stroke: palette[1] }, { label: "truncated", stroke: palette[3] }],
      [x, s.calls, s.error_calls, s.truncated_calls]);
    chart("chart-latency", [{}, { label: "p50", stroke: palette[2] }, { label: "p95", stroke: palette[3] }, { label: "p99", stroke: palette[1] }, { label: "TTFT p95", stroke: palette[4] }],
      [x, s.latency_p50, s.latency_p95, s.latency_p99, s.ttft_p95]);
    const body = $("prompt-cache-table").tBodies[0];
    clear(body);
    for (const row of doc.prompt_cache) {
      body.append(el("tr", {}, el("td", {}, row.route), el("td", {}, row.calls), el("td", {}, row.prompt_tokens),
        el("td", {}, row.cache_read_tokens), el("td", {}, row.cache_write_tokens), el("td", {}, percent(row.hit_ratio))));
    }
  }

  function capCells(period) {
    if (!period) return [el("td", {}, "–"), el("td", {}, "no cap")];
    const over = period.fraction !== null && period.fraction >= 1;
    return [el("td", { class: over ? "breached" : null }, usd(period.spend_usd) + " (" + percent(period.fraction) + ")"), el("td", {}, usd(period.cap_usd))];
  }

  async function loadBudgets() {
    const doc = await request("GET", api + "budgets");
    $("budgets-period").textContent = "Today " + doc.day + ", month " + doc.month + "; alerts at " + doc.thresholds.map((f) => Math.round(f * 100) + " %").join(", ");
    const body = $("budgets-table").tBodies[0];
    clear(body);
    const warn = Math.min(...doc.thresholds);
    for (const cap of doc.caps) {
      const fractions = [cap.daily, cap.monthly].filter(Boolean).map((p) => p.fraction || 0);
      const worst = Math.max(0, ...fractions);
      body.append(el("tr", { class: worst >= 1 ? "breached" : worst >= warn ? "warn" : null, "data-scope": cap.scope, "data-id": cap.id },
        el("td", {}, cap.scope), el("td", {}, cap.name), el("td", {}, cap.mode), ...capCells(cap.daily), ...capCells(cap.monthly)));
    }
    const keys = await request("GET", api + "keys");
    const keyBody = $("keys-table").tBodies[0];
    clear(keyBody);
    for (const key of keys.keys) {
      const revoke = el("button", { type: "button", class: "revoke", "data-key": key.key_id, disabled: role !== "admin" || key.status === "revoked" }, "Revoke");
      revoke.addEventListener("click", () => act("POST", api + "keys/" + encodeURIComponent(key.key_id) + "/revoke", undefined, loadBudgets));
      keyBody.append(el("tr", { "data-key": key.key_id }, el("td", {}, key.key_id), el("td", {}, key.name), el("td", {}, key.team),
        el("td", {}, key.project), el("td", { class: "status" }, key.status), el("td", {}, revoke)));
    }
  }

  async function act(method, path, body, then) {
    showError(null);
    try {
      const doc = await request(method, path, body);
      if (then) await then(doc);
      return doc;
    } catch (error) {
      showError(error);
      return null;
    }
  }

  function figureText(figure) {
    if (!figure) return "–";
    const shown = (v) => (v === null || v === undefined ? "–" : Number(v).toPrecision(3));
    return shown(figure.canary) + " vs " + shown(figure.control) + (figure.breached ? " (breached)" : "");
  }

  async function loadRollouts() {
    const doc = await request("GET", api + "rollouts");
    $("rollouts-note").textContent = doc.note || (doc.routes.length ? "Config version " + doc.config_version : "No route has variants.");
    const box = $("rollouts");
    clear(box);
    const names = ["error_rate", "truncation_rate", "latency_p95", "ttft_p95", "cost_per_call", "quality"];
    for (const route of doc.routes) {
      const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "variant"), el("th", {}, "weight"), el("th", {}, "calls"),
        ...names.map((n) => el("th", {}, n)), el("th", {}, ""))));
      const body = el("tbody");
      for (const variant of route.variants) {
        const figures = {};
        for (const figure of variant.guardrails || []) figures[figure.guardrail] = figure;
        const actions = el("td");
        if (!variant.control) {
          const to = el("input", { type: "number", min: "0", max: "100", step: "1", value: String(variant.weight), class: "promote-to", "aria-label": "new weight" });
          const promote = el("button", { type: "button", class: "promote", disabled: role !== "admin" }, "Promote");
          const rollback = el("button", { type: "button", class: "rollback", disabled: role !== "admin" }, "Roll back");
          promote.addEventListener("click", () => act("POST", api + "rollouts/promote", { route: route.route, variant: variant.variant, to: Number(to.value) }, loadRollouts));
          rollback.addEventListener("click", () => act("POST", api + "rollouts/rollback", { route: route.route, variant: variant.variant }, loadRollouts));
          actions.append(to, promote, rollback);
        }
        const breached = (variant.guardrails || []).some((f) => f.breached);
        body.append(el("tr", { class: breached ? "breached" : null, "data-variant": variant.variant },
          el("td", {}, variant.variant + (variant.control ? " (control)" : "")), el("td", { class: "weight" }, variant.weight + " %"),
          el("td", {}, variant.calls), ...names.map((n) => el("td", {}, variant.control ? "–" : figureText(figures[n]))), actions));
      }
      table.append(body);
      const change = route.last_change;
      box.append(el("div", { class: "route", "data-route": route.route }, el("h3", {}, route.route),
        el("p", {}, "Guardrails " + (route.guardrails ? "on" : "off") + ", window " + route.window_seconds + " s; last change: version " +
          (change ? change.version + " (" + change.source + ", " + change.at + ") " + (change.note || "") : "–")), table));
    }
  }

  async function loadLifecycle() {
    const doc = await request("GET", api + "lifecycle");
    const body = $("lifecycle-table").tBodies[0];
    clear(body);
    for (const model of doc.models) {
      const soon = model.days_left !== null && model.days_left <= 30;
      body.append(el("tr", { class: model.state === "retired" ? "breached" : soon || model.state === "deprecated" ? "warn" : null },
        el("td", {}, model.model), el("td", {}, model.state), el("td", {}, model.retires_on), el("td", {}, model.days_left),
        el("td", {}, model.replacement), el("td", {}, model.routes.join(", ")), el("td", {}, model.calls), el("td", {}, usd(model.cost_usd))));
    }
  }

  async function loadEvals() {
    const doc = await request("GET", api + "evals");
    $("evals-note").textContent = doc.note || (doc.results.length ? "" : "No eval results yet (tollhouse eval).");
    const body = $("evals-table").tBodies[0];
    clear(body);
    for (const r of doc.results) {
      body.append(el("tr", { class: r.passed ? null : "breached" }, el("td", {}, r.created_at), el("td", {}, r.suite), el("td", {}, r.target),
        el("td", {}, r.variant), el("td", {}, r.config_version), el("td", {}, r.passed ? "passed" : "failed"), el("td", {}, percent(r.pass_rate)),
        el("td", {}, r.runs), el("td", {}, usd(r.cost_per_case_usd)), el("td", {}, r.latency_p95_ms)));
    }
  }

  function callsQuery() {
    const form = new FormData($("calls-filters"));
    const params = new URLSearchParams();
    for (const [name, value] of form.entries()) if (String(value).trim()) params.set(name, String(value).trim());
    return params;
  }

  async function loadCalls(more) {
    const params = callsQuery();
    if (more && callsCursor) params.set("cursor", callsCursor);
    const doc = await request("GET", api + "calls?" + params.toString());
    const body = $("calls-table").tBodies[0];
    if (!more) clear(body);
    for (const call of doc.calls) {
      const row = el("tr", { "data-request-id": call.request_id }, el("td", {}, call.ts), el("td", {}, call.request_id), el("td", {}, call.model_served || call.model_requested),
        el("td", {}, call.key_id), el("td", {}, call.end_user), el("td", {}, call.status), el("td", {}, call.error_type), el("td", {}, call.truncated ? "yes" : "no"),
        el("td", {}, call.variant), el("td", {}, call.latency_ms), el("td", {}, usd(call.cost_usd)));
      row.addEventListener("click", () => openCall(call.request_id).catch(showError));
      body.append(row);
    }
    callsCursor = doc.next_cursor;
    $("calls-more").hidden = !callsCursor;
  }

  async function openCall(id) {
    const call = await request("GET", api + "calls/" + encodeURIComponent(id));
    shownCall = call;
    $("call-detail").hidden = false;
    $("call-id").textContent = call.request_id;
    $("call-prompt").textContent = call.prompt_text === null ? "(text not kept: ledger.text is off)" : call.prompt_text;
    $("call-answer").textContent = call.answer_text === null ? "(text not kept)" : call.answer_text;
    $("replay-panel").hidden = true;
    $("replay-button").disabled = role !== "admin" || call.prompt_text === null;
    const body = $("call-fields").tBodies[0];
    clear(body);
    for (const [name, value] of Object.entries(call)) {
      if (name === "prompt_text" || name === "answer_text") continue;
      const shown = value !== null && typeof value === "object" ? JSON.stringify(value) : value;
      body.append(el("tr", { "data-field": name }, el("th", {}, name), el("td", {}, shown)));
    }
  }

  async function replay() {
    if (!shownCall) return;
    const doc = await act("POST", api + "calls/" + encodeURIComponent(shownCall.request_id) + "/replay");
    if (!doc) return;
    $("replay-panel").hidden = false;
    $("replay-id").textContent = doc.replay.request_id + " (status " + doc.replay.status + ")";
    $("replay-answer").textContent = doc.replay.error ? "refused: " + doc.replay.error : text(doc.replay.answer_text);
  }

  const loaders = {
    overview: loadOverview,
    budgets: loadBudgets,
    rollouts: loadRollouts,
    lifecycle: loadLifecycle,
    evals: loadEvals,
    calls: () => loadCalls(false),
  };

  function start() {
    for (const button of document.querySelectorAll("nav button")) {
      button.addEventListener("click", () => show(button.dataset.view));
    }
    $("range").addEventListener("change", () => show("overview"));
    $("spend-by").addEventListener("change", () => show("overview"));
    $("calls-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      $("call-detail").hidden = true;
      show("calls");
    });
    $("calls-more").addEventListener("click", () => loadCalls(true).catch(showError));
    $("replay-button").addEventListener("click", () => replay());
    $("signout").addEventListener("click", async () => {
      await act("DELETE", "/dashboard/session");
      signedOut();
    });
    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("signin-error").textContent = "";
      try {
        const session = await request("POST", "/dashboard/session", { token: $("token").value });
        $("token").value = "";
        signedIn(session);
      } catch (error) {
        $("signin-error").textContent = error.message;
      }
    });
    request("GET", "/dashboard/session").then(signedIn, signedOut);
  }

  start();
})();
