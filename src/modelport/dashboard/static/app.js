// modelport dashboard: polls the server's read-only JSON views and renders them.
// Every value from the server goes through textContent (never innerHTML), so names and
// messages can never become markup; the page's CSP allows scripts from this server only.
"use strict";
(() => {
  const OVERVIEW_MS = 2000;
  const DETAIL_MS = 10000;
  const WINDOW = "1h";
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
  const $ = (sel) => document.querySelector(sel);
  const state = {
    selected: new URLSearchParams(location.search).get("endpoint"),
    charts: {},
    detailTimer: null,
  };

  // -- small helpers ------------------------------------------------------------------
  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    return Number(v.toPrecision(digits || 4)).toString();
  }
  function pct(v) { return v === null || v === undefined ? "-" : fmt(100 * v, 3) + "%"; }
  function when(iso) {
    if (!iso) return "-";
    const d = new Date(iso);
    return d.toISOString().replace("T", " ").slice(0, 19);
  }
  function cells(values, cls) {
    const tr = el("tr");
    values.forEach((v, i) => tr.appendChild(el("td", v, cls && cls[i] ? { class: cls[i] } : {})));
    return tr;
  }
  function fill(table, rows, emptyText) {
    const body = $(table + " tbody");
    if (!rows.length) {
      const cols = $(table + " thead tr").children.length;
      const tr = el("tr");
      tr.appendChild(el("td", emptyText || "none", { colspan: String(cols), class: "note" }));
      rows = [tr];
    }
    body.replaceChildren(...rows);
  }
  function definitions(target, pairs) {
    const dl = $(target);
    dl.replaceChildren();
    for (const [k, v] of pairs) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
  }
  function setStatus(kind, text) {
    const s = $("#status");
    s.dataset.state = kind;
    s.textContent = text;
  }
  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
    return body;
  }

  // -- overview -----------------------------------------------------------------------
  function renderTabs(endpoints) {
    const nav = $("#tabs");
    nav.replaceChildren(...endpoints.map((e) => {
      const b = el("button", e.name, { type: "button", "data-endpoint": e.name,
        "aria-selected": String(e.name === state.selected) });
      b.addEventListener("click", () => select(e.name));
      return b;
    }));
  }
  function select(name) {
    if (state.selected === name) return;
    state.selected = name;
    const url = new URL(location.href);
    url.searchParams.set("endpoint", name);
    history.replaceState(null, "", url);
    for (const b of document.querySelectorAll("#tabs button"))
      b.setAttribute("aria-selected", String(b.dataset.endpoint === name));
    for (const c of Object.values(state.charts)) c.plot.destroy();
    state.charts = {};
    detailTick();
  }
  function renderDesired(ep) {
    const d = ep.deployment;
    if (!d) {
      definitions("#desired", [["model", ep.model], ["deployment", "none: follows the alias"]]);
      return;
    }
    const pairs = [["model", ep.model], ["stable", d.stable === null ? "-" : "v" + d.stable]];
    if (d.candidate !== null)
      pairs.push(["candidate", `v${d.candidate} (${d.mode}, ${fmt(d.weight)}% of traffic)`]);
    pairs.push(["generation", d.generation], ["updated", `${when(d.updated_at)} by ${d.updated_by}`]);
    definitions("#desired", pairs);
  }
  function renderRollout(r) {
    const box = $("#rollout");
    box.replaceChildren();
    if (!r) { box.appendChild(el("p", "no rollout yet", { class: "note" })); return; }
    box.appendChild(el("p", `#${r.id} ${r.strategy}: v${r.stable ?? "-"} → v${r.candidate}`,
      { class: "rollout-title" }));
    const status = el("span", r.status, { class: "badge", "data-status": r.status, id: "rollout-status" });
    const line = el("p");
    line.appendChild(status);
    line.appendChild(document.createTextNode(
      ` step ${Math.min(r.step_index + 1, r.steps.length)}/${r.steps.length}: ` +
      `${fmt(r.weight)}% to the candidate`));
    box.appendChild(line);
    const bar = el("div", null, { class: "bar", role: "progressbar",
      "aria-valuenow": String(r.weight), "aria-valuemin": "0", "aria-valuemax": "100" });
    const fillBar = el("div", null, { class: "bar-fill" });
    fillBar.style.width = Math.max(0, Math.min(100, r.weight)) + "%";
    bar.appendChild(fillBar);
    box.appendChild(bar);
    if (r.reason) box.appendChild(el("p", r.reason, { class: "note" }));
    if (r.note) box.appendChild(el("p", r.note, { class: "note" }));
    const a = r.assessment;
    if (a) {
      box.appendChild(el("p", `verdict: ${a.verdict.outcome} (${a.verdict.reason})`,
        { class: "verdict", "data-outcome": a.verdict.outcome, id: "verdict" }));
      const table = el("table", null, { class: "checks" });
      table.appendChild(cells(["check", "value", "limit", "passed"]));
      for (const c of a.verdict.checks)
        table.appendChild(cells([c.name, fmt(c.value), fmt(c.limit),
          c.passed === null ? "waiting" : (c.passed ? "yes" : "no")]));
      box.appendChild(table);
    }
  }
  function renderTraffic(ep) {
    fill("#traffic", ep.traffic.map((t) => {
      const tr = cells([`v${t.version}`, t.role || "-", fmt(t.requests), fmt(t.errors),
        pct(t.error_rate), fmt(t.p50_ms), fmt(t.p99_ms), pct(t.agreement)],
        [null, null, "requests", "errors", "error-rate", null, "p99", null]);
      tr.dataset.version = String(t.version);
      return tr;
    }), "no traffic yet");
  }
  function renderAlerts(ep) {
    fill("#alerts", ep.alerts.map((a) => {
      const tr = cells([a.rule, a.state, a.severity, fmt(a.value), fmt(a.threshold),
        when(a.fired_at || a.started_at), a.message + (a.action ? ` [${a.action}]` : "")],
        [null, "state", null, null, null, null, null]);
      tr.dataset.state = a.state;
      tr.dataset.rule = a.rule;
      return tr;
    }), "no alerts");
  }
  function renderVersions(ep) {
    fill("#versions", ep.versions.map((v) => {
      const gate = v.gate === null ? "-" : (v.gate.passed ? "passed" : "failed");
      const metrics = Object.entries(v.metrics).map(([k, x]) => `${k}=${fmt(x)}`).join(" ");
      const tr = cells([`v${v.version}`, v.flavor, v.aliases.join(", ") || "-", gate,
        metrics || "-", when(v.created_at), v.digest]);
      tr.dataset.version = String(v.version);
      return tr;
    }));
  }
  function renderModels(models) {
    fill("#models", models.map((m) => cells([m.name, fmt(m.versions),
      m.latest_version === null ? "-" : "v" + m.latest_version,
      Object.entries(m.aliases).map(([a, v]) => `${a}→v${v}`).join(", ") || "-",
      when(m.updated_at)])), "no models registered");
  }

  // -- charts -------------------------------------------------------------------------
  function chart(id, key, series, title) {
    const versions = Object.keys(series.versions);
    const data = [series.t, ...versions.map((v) => series.versions[v][key])];
    const signature = versions.join(",");
    const box = $("#" + id);
    const existing = state.charts[id];
    if (existing && existing.signature === signature) { existing.plot.setData(data); return; }
    if (existing) existing.plot.destroy();
    if (typeof uPlot === "undefined") return;
    const opts = {
      width: Math.max(280, box.clientWidth || 360), height: 180, title: undefined,
      scales: { x: { time: true } },
      series: [{}, ...versions.map((v, i) => ({ label: "v" + v, stroke: COLOURS[i % COLOURS.length],
        width: 2, spanGaps: false, value: (u, x) => fmt(x) }))],
      axes: [{}, { size: 50 }],
      legend: { live: true },
    };
    box.replaceChildren();
    box.dataset.points = String(series.t.length);
    state.charts[id] = { signature, plot: new uPlot(opts, data, box), title };
  }
  function renderCharts(ep) {
    chart("chart-rps", "rps", ep.series, "throughput");
    chart("chart-p99", "p99_ms", ep.series, "p99");
    chart("chart-errors", "error_rate", ep.series, "errors");
    for (const id of ["chart-rps", "chart-p99", "chart-errors"])
      $("#" + id).dataset.points = String(ep.series.t.length);
  }

  // -- detail (drift, realized metrics, history) --------------------------------------
  function renderDetail(d) {
    const drift = d.drift;
    $("#drift-note").textContent = drift.version !== undefined
      ? `v${drift.version}, ${fmt(drift.rows)} rows in the last ${WINDOW}: ${drift.note || ""}`
      : (drift.note || "");
    fill("#drift", (drift.features || []).map((f) => {
      const flag = f.drifted === null ? f.status : (f.drifted ? "DRIFT" : "ok");
      const tr = cells([f.feature, f.kind || "-", f.test || "-", fmt(f.statistic),
        fmt(f.p_value), fmt(f.psi), flag, fmt(f.current_count)],
        [null, null, null, "statistic", "p-value", "psi", "flag", null]);
      tr.dataset.feature = f.feature;
      tr.dataset.drifted = String(f.drifted);
      return tr;
    }), "no drift measured yet");
    const realized = d.realized;
    $("#realized-note").textContent = `last ${WINDOW}: ${fmt(realized.labels)} labels` +
      (realized.unknown ? `, ${fmt(realized.unknown)} for unknown requests` : "");
    fill("#realized", realized.versions.map((v) => {
      const metrics = Object.entries(v.metrics).filter(([, x]) => x !== null)
        .map(([k, x]) => `${k}=${fmt(x)}`).join(" ");
      const tr = cells([`v${v.version}`, fmt(v.predictions), fmt(v.labelled), metrics || "-"]);
      tr.dataset.version = String(v.version);
      for (const [k, x] of Object.entries(v.metrics)) if (x !== null) tr.dataset[k] = String(x);
      return tr;
    }), "no predictions logged yet");
    const rows = [];
    for (const a of d.alias_history)
      rows.push([a.at, `alias ${a.alias}: ${a.from_version === null ? "-" : "v" + a.from_version}` +
        ` → ${a.to_version === null ? "removed" : "v" + a.to_version}`, a.actor, a.reason]);
    for (const e of d.events)
      rows.push([e.at, `${e.kind}: stable v${e.state.stable ?? "-"}` +
        (e.state.candidate !== null && e.state.candidate !== undefined
          ? `, candidate v${e.state.candidate} ${e.state.mode} ${fmt(e.state.weight)}%` : ""),
        e.actor, e.reason]);
    rows.sort((x, y) => (x[0] < y[0] ? 1 : -1));
    fill("#history", rows.slice(0, 30).map((r) => cells([when(r[0]), r[1], r[2], r[3] || ""])));
  }

  // -- lineage ------------------------------------------------------------------------
  function renderLineage(l) {
    fill("#lineage", l.versions.map((v) => {
      const on = (role) => v.datasets.filter((d) => d.role === role)
        .map((d) => `${d.uri} (${fmt(d.rows)} rows)`).join(", ") || "-";
      const made = [];
      if (v.pipeline_run)
        made.push(`pipeline ${v.pipeline_run.pipeline || "?"} run ${String(v.pipeline_run.id).slice(0, 8)}`);
      if (v.tuning) made.push(`study ${v.tuning.study} trial ${v.tuning.trial ?? "?"}`);
      if (v.converted_from) made.push(`converted from ${v.converted_from}`);
      const gate = v.gate === null ? "-" : (v.gate.passed ? "passed" : "failed");
      const tr = cells([`v${v.version}`, v.role, on("training"), on("eval"),
        made.join("; ") || "-", gate]);
      tr.dataset.version = String(v.version);
      return tr;
    }), "nothing served yet");
  }

  // -- loops --------------------------------------------------------------------------
  function render(data) {
    const endpoints = data.endpoints;
    if (!state.selected || !endpoints.some((e) => e.name === state.selected))
      state.selected = endpoints.length ? endpoints[0].name : null;
    renderTabs(endpoints);
    renderModels(data.models);
    $("#empty").hidden = endpoints.length > 0;
    $("#endpoint").hidden = !state.selected;
    const ep = endpoints.find((e) => e.name === state.selected);
    if (!ep) return;
    document.title = `modelport · ${ep.name}`;
    renderDesired(ep);
    renderRollout(ep.rollout);
    definitions("#aliases", Object.entries(ep.aliases).map(([a, v]) => [a, "v" + v]));
    renderTraffic(ep);
    renderAlerts(ep);
    renderVersions(ep);
    renderCharts(ep);
  }
  async function tick() {
    try {
      const data = await getJSON("/dashboard/api/overview");
      const first = !state.selected;
      render(data);
      setStatus("live", `live · modelport ${data.server.version} · ${when(data.server.time)} UTC`);
      if (first && state.selected) detailTick();
    } catch (err) {
      setStatus("error", "cannot reach the server: " + err.message);
    } finally {
      setTimeout(tick, OVERVIEW_MS);
    }
  }
  async function detailTick() {
    clearTimeout(state.detailTimer);
    const name = state.selected;
    if (name) {
      try {
        const d = await getJSON(`/dashboard/api/endpoints/${encodeURIComponent(name)}?window=${WINDOW}`);
        if (name === state.selected) renderDetail(d);
      } catch (err) {
        $("#drift-note").textContent = err.message;
      }
      try {
        const l = await getJSON(`/dashboard/api/lineage/${encodeURIComponent(name)}`);
        if (name === state.selected) renderLineage(l);
      } catch (err) {
        fill("#lineage", [], err.message);
      }
    }
    state.detailTimer = setTimeout(detailTick, DETAIL_MS);
  }
  document.addEventListener("DOMContentLoaded", () => { tick(); detailTick(); });
})();
